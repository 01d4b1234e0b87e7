// The candidate list: live filtering (htmx swaps the results), row selection for bulk actions.
// Everything here is an enhancement: without JavaScript the filter form submits normally and
// the bulk form sends the ticked rows to the confirmation page.
(function () {
  "use strict";

  const FILTER_FORM = "candidate-filters";
  const TEXT_INPUTS = "input[type=search], input[type=text], input:not([type])";
  let typingTimer = null;

  function isFilterInput(element) {
    return Boolean(element && element.form && element.form.id === FILTER_FORM);
  }

  function refresh(form) {
    window.clearTimeout(typingTimer);
    form.requestSubmit();
  }

  // Typing in the search box or a text filter: refresh after a short pause.
  document.addEventListener("input", function (event) {
    const element = event.target;
    if (!isFilterInput(element) || !element.matches(TEXT_INPUTS)) {
      return;
    }
    window.clearTimeout(typingTimer);
    typingTimer = window.setTimeout(function () {
      element.form.requestSubmit();
    }, 350);
  });

  // Selects, checkboxes and dates: refresh at once.
  document.addEventListener("change", function (event) {
    const element = event.target;
    if (isFilterInput(element) && !element.matches(TEXT_INPUTS)) {
      refresh(element.form);
    }
  });

  // Keep shareable URLs short: drop empty filters (and the skills mode without skills). A new
  // search text goes back to the default order (best match first).
  document.body.addEventListener("htmx:configRequest", function (event) {
    const form = event.detail.elt;
    if (!form || form.id !== FILTER_FORM) {
      return;
    }
    const parameters = event.detail.parameters;
    const current = new URLSearchParams(window.location.search);
    const names = new Set();
    parameters.forEach(function (_value, name) { names.add(name); });
    names.forEach(function (name) {
      const values = parameters.getAll(name).filter(function (value) { return value !== ""; });
      parameters.delete(name);
      values.forEach(function (value) { parameters.append(name, value); });
    });
    if (!parameters.get("skills")) {
      parameters.delete("skills_mode");
    }
    if ((parameters.get("q") || "") !== (current.get("q") || "")) {
      parameters.delete("sort");
    }
  });

  // --- selection for bulk actions ---

  function rowBoxes() {
    return Array.from(document.querySelectorAll("input[name=ids][form=bulk-form]"));
  }

  function updateSelection() {
    const boxes = rowBoxes();
    const ticked = boxes.filter(function (box) { return box.checked; }).length;
    const pageBox = document.getElementById("select-page");
    const allMatching = document.getElementById("select-all-matching");
    const label = document.getElementById("bulk-selected");
    if (pageBox) {
      pageBox.checked = boxes.length > 0 && ticked === boxes.length;
      pageBox.indeterminate = ticked > 0 && ticked < boxes.length;
    }
    if (!label) {
      return;
    }
    showNothingTicked(label, false);
    if (allMatching && allMatching.checked) {
      label.textContent = "All " + label.dataset.total + " matching selected";
    } else if (ticked) {
      label.textContent = ticked + " selected";
    } else {
      label.textContent = "Tick candidates to act on them";
    }
  }

  document.addEventListener("change", function (event) {
    const element = event.target;
    if (element.id === "select-page") {
      rowBoxes().forEach(function (box) { box.checked = element.checked; });
    } else if (element.id === "select-all-matching" && element.checked) {
      rowBoxes().forEach(function (box) { box.checked = true; });
    } else if (element.matches("input[name=ids][form=bulk-form]") && !element.checked) {
      const allMatching = document.getElementById("select-all-matching");
      if (allMatching) {
        allMatching.checked = false;
      }
    }
    if (element.matches("#select-page, #select-all-matching, input[name=ids][form=bulk-form]")) {
      updateSelection();
    }
  });

  // The "nothing ticked" error: red and announced while it shows, the grey hint otherwise.
  function showNothingTicked(label, shown) {
    label.classList.toggle("text-danger", shown);
    label.classList.toggle("text-body-secondary", !shown);
    if (shown) {
      label.setAttribute("role", "alert");
      label.textContent = "Tick at least one candidate first";
    } else {
      label.removeAttribute("role");
    }
  }

  // Choosing a bulk action with nothing ticked: say so instead of a round trip, and take the
  // keyboard to the first checkbox.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.id !== "bulk-form") {
      return;
    }
    const allMatching = document.getElementById("select-all-matching");
    const ticked = rowBoxes().some(function (box) { return box.checked; });
    const action = form.querySelector("[name=action]");
    const label = document.getElementById("bulk-selected");
    if (!ticked && !(allMatching && allMatching.checked)) {
      event.preventDefault();
      showNothingTicked(label, true);
      const firstBox = rowBoxes()[0] || allMatching;
      if (firstBox) {
        firstBox.focus();
      }
    } else if (action && !action.value) {
      event.preventDefault();
      action.focus();
    }
  });

  document.body.addEventListener("htmx:afterSwap", updateSelection);
})();
