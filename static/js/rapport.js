// Rapport's own behaviour. Loaded with `defer`; no inline scripts anywhere (CSP).
(function () {
  "use strict";

  // Forms that ask before doing something destructive: <form data-confirm="Remove Ana?">.
  document.addEventListener("submit", function (event) {
    const message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  // Selects that submit their form on change (with a no-JS submit button beside them).
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) {
      event.target.form.requestSubmit();
    }
  });
})();
