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

  // A preview of what a form makes, drawn by the server with the form's values and kept in
  // step here as they change. Inside the form, an element with data-preview-field="name"
  // shows that field's text (data-preview-empty when it is blank, data-preview-truncate="140"
  // cut as Django's truncatechars cuts, hidden when there is nothing to show); with
  // data-preview-class="pool-color-" it carries the class pool-color-<value> instead; one with
  // data-preview-when="kind=smart" shows only while the field "kind" is "smart".
  const PREVIEW_PARTS = "[data-preview-field], [data-preview-when]";
  function showPreviewPart(part, field) {
    const value = field.value.trim();
    if (part.dataset.previewWhen) {
      part.hidden = value !== part.dataset.previewWhen.split("=")[1];
      return;
    }
    const prefix = part.dataset.previewClass;
    if (prefix) {
      if (/^[a-z0-9-]+$/.test(value)) {
        Array.from(part.classList)
          .filter(function (className) {
            return className.startsWith(prefix);
          })
          .forEach(function (className) {
            part.classList.remove(className);
          });
        part.classList.add(prefix + value);
      }
      return;
    }
    let text = value || part.dataset.previewEmpty || "";
    const limit = Number(part.dataset.previewTruncate);
    if (limit && text.length > limit) {
      text = text.slice(0, limit - 1) + "…";
    }
    part.textContent = text;
    part.hidden = !text;
  }
  // The parts that show the field `changed` (every part, when it is null).
  function showPreview(form, changed) {
    form.querySelectorAll(PREVIEW_PARTS).forEach(function (part) {
      const name = part.dataset.previewField || part.dataset.previewWhen.split("=")[0];
      const field = form.elements.namedItem(name);
      if (field && (!changed || changed.name === name)) {
        showPreviewPart(part, field);
      }
    });
  }
  ["input", "change"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      const form = event.target.form;
      if (form && form.querySelector(PREVIEW_PARTS)) {
        showPreview(form, event.target);
      }
    });
  });
  // A page the browser restored with the values typed before (going back to it).
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form").forEach(function (form) {
      if (form.querySelector(PREVIEW_PARTS)) {
        showPreview(form, null);
      }
    });
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

  // An email preview frame (<iframe data-email-frame>) takes the height of its email: no
  // scrollbar inside, no blank background under a short one. The frame is sandboxed without
  // scripts (the email runs none, and its own response forbids them too) but with
  // allow-same-origin, so that this page may read how tall the email came out. Without
  // JavaScript the frame keeps its height from rapport.css and scrolls.
  function fitEmailFrame(frame) {
    let email = null;
    try {
      email = frame.contentDocument;
    } catch (error) {
      return; // another origin: leave the frame as it is
    }
    // Nothing to measure yet (the blank document a frame starts with): keep the height.
    if (!email || !email.documentElement || email.URL === "about:blank") {
      return;
    }
    const root = email.documentElement;
    // The root's box is as tall as the email; what spills out of it (a root the email makes
    // as tall as the frame) shows in scrollHeight. A horizontal scrollbar inside is kept.
    const spills = root.scrollHeight > root.clientHeight ? root.scrollHeight : 0;
    const content = Math.max(root.getBoundingClientRect().height, spills);
    const scrollbar = frame.clientHeight - root.clientHeight;
    const borders = frame.offsetHeight - frame.clientHeight;
    const height = Math.ceil(content) + Math.max(scrollbar, 0) + borders;
    if (Math.abs(height - frame.offsetHeight) > 1) {
      frame.style.height = height + "px";
    }
  }
  // A new width rewraps the email (a phone turned, a window resized): measure again.
  const frameResized = window.ResizeObserver
    ? new ResizeObserver(function (entries) {
        entries.forEach(function (entry) {
          fitEmailFrame(entry.target);
        });
      })
    : null;
  function watchEmailFrames(root) {
    const frames = Array.from(root.querySelectorAll("iframe[data-email-frame]"));
    if (root instanceof Element && root.matches("iframe[data-email-frame]")) {
      frames.push(root);
    }
    frames.forEach(function (frame) {
      fitEmailFrame(frame);
      if (frameResized) {
        frameResized.observe(frame);
      }
    });
  }
  watchEmailFrames(document);
  // Each email that loads into a frame, the first or a new one ("Update preview" posts into
  // the frame; htmx may swap in a new frame): load events do not bubble, so listen while they
  // are captured.
  document.addEventListener(
    "load",
    function (event) {
      if (event.target instanceof Element && event.target.matches("iframe[data-email-frame]")) {
        fitEmailFrame(event.target);
      }
    },
    { capture: true },
  );
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target instanceof Element) {
      watchEmailFrames(event.target);
    }
  });
})();
