// The pipeline board: drag a card to another column (SortableJS) and the card's own stage
// form is submitted through htmx; a failed move puts the card back and says why. Without
// JavaScript the same form (a stage select and a Move button) does the job.
(function () {
  "use strict";

  // The bulk move form says how many cards are ticked ("Move 3 cards to"), and its status line
  // (outside the form) tells a screen reader; a phone shows the form as a bar once a card is
  // ticked (pipelines.css). "Clear selection" resets the form, which unticks the cards after its
  // reset event: count once it is done.
  const bulk = document.getElementById("bulk-move");
  const boxes = 'input[name="membership"][form="bulk-move"]';
  let lastTicked = null;
  function countTicked() {
    const ticked = document.querySelectorAll(boxes + ":checked").length;
    const cards = ticked === 1 ? "1 card" : ticked + " cards";
    writeText(bulk.querySelector("[data-bulk-count]"), ticked ? cards : "selected");
    writeText(
      document.querySelector("[data-bulk-status]"),
      ticked ? cards + " selected" : "No cards selected",
    );
  }
  // Only a change is written: a live region may repeat text written again.
  function writeText(element, text) {
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }
  if (bulk) {
    document.addEventListener("change", function (event) {
      if (event.target.matches(boxes)) {
        if (event.target.checked) {
          lastTicked = event.target;
        }
        countTicked();
      }
    });
    // Clear hides itself (and on a phone the whole bar): a keyboard user goes back to the card
    // ticked last rather than to the top of the page. (A mouse's click leaves focus be.)
    bulk.addEventListener("reset", function () {
      const active = document.activeElement;
      const focused = bulk.contains(active) && active.matches(":focus-visible") ? active : null;
      window.setTimeout(function () {
        countTicked();
        if (focused && !focused.getClientRects().length) {
          const box =
            lastTicked && lastTicked.isConnected ? lastTicked : document.querySelector(boxes);
          if (box) {
            box.focus();
          }
        }
      }, 0);
    });
    // A moved card comes back unticked; a page restored by Back keeps its ticks.
    document.body.addEventListener("htmx:afterSettle", countTicked);
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        countTicked();
      }
    });
  }

  const board = document.querySelector("[data-board-sortable]");
  if (!board || typeof Sortable === "undefined") {
    return;
  }
  const status = document.getElementById("board-status");

  // htmx copies the old element's `style` attribute to its replacement while settling, and
  // SortableJS leaves one on a dragged card; the Content Security Policy forbids setting style
  // attributes, so settle only classes and sizes on this page.
  if (window.htmx) {
    window.htmx.config.attributesToSettle = ["class", "width", "height"];
  }

  function say(message, kind) {
    if (!status) {
      return;
    }
    status.replaceChildren();
    const alert = document.createElement("div");
    alert.className = "alert alert-" + (kind || "danger") + " py-2 px-3 mb-3";
    alert.textContent = message;
    status.appendChild(alert);
    window.setTimeout(function () {
      if (alert.parentNode === status) {
        status.replaceChildren();
      }
    }, 6000);
  }

  function listOfStage(stageId) {
    return board.querySelector('.board-cards[data-stage-id="' + stageId + '"]');
  }

  // Remember where a card came from, so that a failed move can put it back.
  const origins = new WeakMap();

  board.querySelectorAll(".board-cards").forEach(function (list) {
    Sortable.create(list, {
      group: "pipeline",
      sort: false,
      animation: 120,
      delay: 150,
      delayOnTouchOnly: true,
      draggable: ".board-card",
      filter: "a, select, input, button, label",
      preventOnFilter: false,
      ghostClass: "board-card-ghost",
      chosenClass: "board-card-chosen",
      onEnd: function (event) {
        if (event.from === event.to) {
          return;
        }
        const card = event.item;
        const form = card.querySelector(".card-move-form");
        const select = form && form.querySelector("select[name=stage]");
        if (!select) {
          return;
        }
        origins.set(form, { list: event.from, index: event.oldIndex, stage: select.value });
        card.removeAttribute("style");
        card.classList.add("board-card-saving");
        select.value = event.to.dataset.stageId;
        form.requestSubmit();
      },
    });
  });

  function restore(form, message) {
    const origin = origins.get(form);
    const card = form.closest(".board-card");
    if (origin && card) {
      const sibling = origin.list.children[origin.index] || null;
      origin.list.insertBefore(card, sibling);
      form.querySelector("select[name=stage]").value = origin.stage;
      card.classList.remove("board-card-saving");
      origins.delete(form);
    }
    say(message || "The card could not be moved. It is back where it was.");
  }

  // A select change (keyboard users) is remembered too, to undo on failure.
  board.addEventListener("focusin", function (event) {
    if (event.target.matches(".card-move-form select")) {
      const form = event.target.form;
      const card = form.closest(".board-card");
      const list = card.parentNode;
      origins.set(form, {
        list: list,
        index: Array.prototype.indexOf.call(list.children, card),
        stage: event.target.value,
      });
    }
  });

  board.addEventListener("htmx:responseError", function (event) {
    const form = event.target.closest(".card-move-form");
    if (form) {
      const text = (event.detail.xhr && event.detail.xhr.responseText) || "";
      restore(form, text.length < 300 && text.trim() ? text.trim() : null);
    }
  });
  board.addEventListener("htmx:sendError", function (event) {
    const form = event.target.closest(".card-move-form");
    if (form) {
      restore(form, "Rapport could not be reached. The card is back where it was.");
    }
  });

  // After a successful move the new card replaces the old one; make sure every card sits in
  // the column of its stage (a move made with the select) and keep focus on the moved one.
  document.body.addEventListener("htmx:afterSettle", function () {
    board.querySelectorAll(".board-card").forEach(function (card) {
      const list = listOfStage(card.dataset.stageId);
      if (list && card.parentNode !== list) {
        const active = document.activeElement;
        const focused = !active || active === document.body || card.contains(active);
        list.insertBefore(card, list.firstElementChild);
        const select = card.querySelector("select[name=stage]");
        if (focused && select) {
          select.focus();
        }
      }
    });
  });
})();
