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

  // Parts of a form that fit one choice only: <fieldset data-show-when="kind=email"> shows
  // while the form's "kind" field (radio buttons or a select) is "email". Without JavaScript
  // every part shows, with a heading that says which choice it is for.
  function showChosenParts(form) {
    form.querySelectorAll("[data-show-when]").forEach(function (part) {
      const [name, value] = part.dataset.showWhen.split("=");
      const field = form.elements.namedItem(name);
      part.hidden = Boolean(field && field.value) && field.value !== value;
    });
  }
  document.querySelectorAll("form").forEach(function (form) {
    if (form.querySelector("[data-show-when]")) {
      showChosenParts(form);
    }
  });
  document.addEventListener("change", function (event) {
    const form = event.target.form;
    if (form && form.querySelector("[data-show-when]")) {
      showChosenParts(form);
    }
  });

  // A table wider than its box scrolls sideways; mark the edges that hide columns, which
  // rapport.css fades, so that a phone (whose scrollbars are hidden) shows there is more.
  function markScrollEdges(box) {
    const hidden = box.scrollWidth - box.clientWidth;
    box.classList.toggle("scrolls-left", box.scrollLeft > 1);
    box.classList.toggle("scrolls-right", hidden - box.scrollLeft > 1);
  }
  const resized = window.ResizeObserver
    ? new ResizeObserver(function (entries) {
        entries.forEach(function (entry) {
          markScrollEdges(entry.target);
        });
      })
    : null;
  function watchTables(root) {
    const boxes = Array.from(root.querySelectorAll(".table-responsive"));
    if (root instanceof Element && root.matches(".table-responsive")) {
      boxes.push(root);
    }
    boxes.forEach(function (box) {
      markScrollEdges(box);
      if (resized) {
        resized.observe(box);
      }
    });
  }
  watchTables(document);
  // A page that comes back from a form post with errors (a full page, not an htmx swap): focus
  // goes to the first field in error, as after an htmx swap below, so the keyboard and a
  // screen reader start where the problem is rather than at the top of the page.
  const firstInvalid = document.querySelector(
    "form[method=post] :is(input, select, textarea).is-invalid",
  );
  if (firstInvalid) {
    firstInvalid.focus();
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    watchTables(event.target);
    // A form sent by htmx that comes back with errors: move focus to the first field in error
    // (its message is tied to it by aria-describedby), instead of leaving it on <body> where
    // the swap dropped it and a screen reader says nothing.
    const config = event.detail && event.detail.requestConfig;
    if (config && config.verb !== "get" && event.target instanceof Element) {
      const invalid = event.target.querySelector(".is-invalid, [aria-invalid=true]");
      if (invalid && typeof invalid.focus === "function") {
        invalid.focus();
      }
    }
  });
  // Scroll events do not bubble: listen while they are captured.
  document.addEventListener(
    "scroll",
    function (event) {
      if (event.target instanceof Element && event.target.matches(".table-responsive")) {
        markScrollEdges(event.target);
      }
    },
    { capture: true, passive: true },
  );
})();
