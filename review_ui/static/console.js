/* Waypost console: keyboard shortcuts, select-all, and the inbox cursor kept across the
   list's updates. Nothing else lives here: every page works without this file, and htmx
   does the requests. No eval, no inline code, so the Content-Security-Policy
   (script-src 'self') holds. The key map is in docs/reviewing.md. */
(function () {
  "use strict";

  var G_WINDOW_MS = 1500; // how long after g the second key of "g i" may come

  function typing(target) {
    return target instanceof Element &&
      target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  function rows() {
    return Array.from(document.querySelectorAll("[data-inbox] tr[data-row]"));
  }

  function currentIndex(list) {
    return list.findIndex(function (row) { return row.getAttribute("aria-current") === "true"; });
  }

  function mark(list, index, focus) {
    if (list.length === 0) { return; }
    index = Math.max(0, Math.min(list.length - 1, index));
    list.forEach(function (row, i) {
      if (i === index) {
        row.setAttribute("aria-current", "true");
      } else {
        row.removeAttribute("aria-current");
      }
    });
    if (focus) {
      list[index].focus();
      list[index].scrollIntoView({ block: "nearest" });
    }
  }

  function currentRow() {
    var list = rows();
    var index = currentIndex(list);
    return index >= 0 ? list[index] : null;
  }

  function toggleHelp(show) {
    var help = document.getElementById("help");
    if (!help) { return; }
    help.hidden = show === undefined ? !help.hidden : !show;
    document.querySelectorAll("[data-help-toggle]").forEach(function (button) {
      button.setAttribute("aria-expanded", String(!help.hidden));
    });
  }

  // htmx wires up swapped-in content only once it settles (20 ms later): a key pressed
  // in between would send a form or follow a link the plain way, a full page load that
  // loses the keys typed meanwhile. Wire the element now (htmx does nothing twice).
  function wired(element) {
    if (element && window.htmx) { window.htmx.process(element); }
    return element;
  }

  function submitForm(id) {
    var form = wired(document.getElementById(id));
    if (!form) { return false; }
    form.requestSubmit();
    return true;
  }

  function focusField(id) {
    var field = document.getElementById(id);
    if (!field) { return false; }
    field.focus();
    field.scrollIntoView({ block: "center" });
    return true;
  }

  function clickElement(selector, root) {
    var element = wired((root || document).querySelector(selector));
    if (!element) { return false; }
    element.click();
    return true;
  }

  // --- the inbox: bulk decisions by key ------------------------------------------------

  function selectedBoxes() {
    return Array.from(document.querySelectorAll('#bulk input[name="selected"]:checked'));
  }

  function hint(text) {
    var element = document.getElementById("bulk-hint");
    if (!element) { return; }
    element.textContent = text || "";
    element.hidden = !text;
  }

  // a and r act on the ticked rows, or on the row under the cursor when none is ticked;
  // they only get the decision ready (the button, or the reason field): Enter confirms.
  function readyBulk(buttonId) {
    if (!document.getElementById(buttonId)) { return false; }
    var boxes = selectedBoxes();
    if (boxes.length === 0) {
      var row = currentRow();
      var box = row && row.querySelector('input[name="selected"]');
      if (box) {
        box.checked = true;
        boxes = [box];
      }
    }
    if (boxes.length === 0) {
      hint("Select escalations first: j and k move, x ticks a row.");
      return true;
    }
    var count = boxes.length + " selected escalation" + (boxes.length === 1 ? "" : "s");
    if (buttonId === "bulk-approve") {
      focusField("bulk-approve");
      hint("Enter approves " + count + "; Esc cancels.");
    } else {
      focusField("bulk-reason");
      hint("Type the reason; Enter rejects " + count + "; Esc cancels.");
    }
    return true;
  }

  var inboxKeys = {
    j: function () { var list = rows(); mark(list, currentIndex(list) + 1, true); return list.length > 0; },
    k: function () { var list = rows(); mark(list, Math.max(currentIndex(list) - 1, 0), true); return list.length > 0; },
    o: function () { var row = currentRow(); return row ? clickElement("a.open", row) : false; },
    x: function () {
      var row = currentRow();
      var box = row && row.querySelector('input[name="selected"]');
      if (!box) { return false; }
      box.checked = !box.checked;
      return true;
    },
    a: function () { return readyBulk("bulk-approve"); },
    r: function () { return readyBulk("bulk-reject"); },
    u: function () { return clickElement("#updates a"); }
  };

  // --- the inbox: the cursor and the ticks survive a new list --------------------------
  // Any swap of #results (the live update's "show them", a page, a bulk outcome, a claim)
  // puts the cursor back on the same escalation (or, if it left the list, on the row now
  // where it was) and ticks again the rows still showing what was ticked.

  var kept = null;

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!(target instanceof Element) || target.id !== "results") { return; }
    var list = rows();
    var index = currentIndex(list);
    kept = {
      cursor: index >= 0 ? list[index].getAttribute("data-id") : null,
      index: index,
      focused: index >= 0 && document.activeElement === list[index],
      ticked: selectedBoxes().map(function (box) { return box.value; })
    };
  });

  // On afterSwap, not afterSettle: it runs in the same task as the swap, so no key
  // pressed meanwhile moves a cursor that is then put back.
  document.addEventListener("htmx:afterSwap", function () {
    if (kept === null || !document.getElementById("results")) { return; }
    var state = kept;
    kept = null;
    // htmx focuses the element with the id that had the focus: not the bulk buttons
    // again, where a second Enter would send an empty selection.
    if (document.activeElement instanceof HTMLButtonElement && document.activeElement.closest("#bulk")) {
      document.activeElement.blur();
    }
    var list = rows();
    if (state.index >= 0 && list.length > 0) {
      var index = list.findIndex(function (row) { return row.getAttribute("data-id") === state.cursor; });
      mark(list, index >= 0 ? index : state.index, state.focused);
    }
    document.querySelectorAll('#bulk input[name="selected"]').forEach(function (box) {
      if (state.ticked.indexOf(box.value) >= 0) { box.checked = true; }
    });
  });

  // --- an escalation ---------------------------------------------------------------------

  // True while a decision of this page is on its way: a second key must not decide
  // again (the answer is the next escalation). Kept here, not read from htmx's
  // htmx-request class: for 20 ms after the swap htmx gives the next escalation's forms
  // the classes of the forms with the same id they replace, so the next page would look
  // busy and drop the key pressed then.
  // The request is known by its XMLHttpRequest: htmx announces the end of a request whose
  // form the answer replaced on an element still in the page, as that element's event.
  var sending = null;

  function busy() {
    return sending !== null;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt instanceof HTMLFormElement && elt.closest("[data-escalation]")) {
      sending = event.detail.xhr;
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.xhr === sending) { sending = null; }
  });

  function outputEdited() {
    var field = document.getElementById("edit-output");
    return field instanceof HTMLTextAreaElement && field.value !== field.defaultValue;
  }

  // After a refused decision (409) the page shows the escalation as it is now; the a key
  // must not approve what the reviewer has not read yet. It shows them why instead; the
  // buttons (a deliberate click) and a reloaded page work as usual. Once the output was
  // edited, a points at "Approve the edited output" instead of approving the original.
  function approve() {
    if (document.querySelector("[data-escalation][data-conflict]")) {
      var notice = document.getElementById("conflict");
      if (notice) {
        notice.focus();
        notice.scrollIntoView({ block: "center" });
      }
      return true;
    }
    if (outputEdited()) {
      var button = document.querySelector('#edit-form button[type="submit"]');
      if (button) {
        button.focus();
        button.scrollIntoView({ block: "center" });
      }
      return true;
    }
    return submitForm("approve-form");
  }

  // htmx puts the focus back into the field with the same id after a swap. After a
  // decision sent from a field (Ctrl+Enter) the page is the next escalation, whose field
  // must not catch the next key: a would type "a" instead of approving.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!(target instanceof Element) || target.id !== "main") { return; }
    if (document.querySelector("[data-escalation][data-moved-on]") && typing(document.activeElement)) {
      document.activeElement.blur();
    }
  });

  var escalationKeys = {
    a: approve,
    r: function () { return focusField("reject-reason"); },
    e: function () { return focusField("edit-output"); },
    c: function () { return clickElement("#claim-button"); },
    n: function () { return clickElement("#next-escalation"); },
    p: function () { return clickElement("#previous-escalation"); }
  };

  // --- every page ------------------------------------------------------------------------

  var gPressedAt = 0;

  function toInbox() {
    return clickElement("#back-to-inbox") || clickElement('.topbar nav a[href="/inbox"]');
  }

  // Ctrl+Enter (or Cmd+Enter) in a field sends its form: the reason to reject, the edited
  // output, a comment; in the inbox's reason field it rejects the selected rows.
  function sendField(target) {
    if (target.id === "bulk-reason") { return clickElement("#bulk-reject"); }
    var form = target.form;
    if (!(form instanceof HTMLFormElement)) { return false; }
    wired(form).requestSubmit();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented) { return; }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && typing(event.target)) {
      if (sendField(event.target)) { event.preventDefault(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "Escape") {
      if (typing(event.target) || (event.target instanceof Element && event.target.closest("#bulk"))) {
        event.target.blur();
      }
      hint("");
      toggleHelp(false);
      return;
    }
    if (event.key === "Enter" && event.target instanceof Element && event.target.id === "bulk-reason") {
      // The form's default button does nothing (so Enter never approves); here it rejects.
      if (clickElement("#bulk-reject")) { event.preventDefault(); }
      return;
    }
    if (typing(event.target)) { return; }
    var handled = false;
    var afterG = Date.now() - gPressedAt < G_WINDOW_MS;
    gPressedAt = 0;
    if (event.key === "?") {
      toggleHelp();
      handled = true;
    } else if (event.key === "g") {
      gPressedAt = Date.now();
      handled = true;
    } else if (afterG && event.key === "i") {
      handled = toInbox();
    } else if (document.querySelector("[data-inbox]")) {
      var key = event.key;
      if (key === "Enter") {
        // Enter keeps its own meaning on links and buttons; on a row it opens it.
        if (!(event.target === document.body || event.target.matches("tr[data-row]"))) { return; }
        key = "o";
      }
      handled = Object.prototype.hasOwnProperty.call(inboxKeys, key) && inboxKeys[key]();
    } else if (document.querySelector("[data-escalation]")) {
      handled = Object.prototype.hasOwnProperty.call(escalationKeys, event.key) &&
        (busy() || escalationKeys[event.key]());
    }
    if (handled) { event.preventDefault(); }
  });

  document.addEventListener("click", function (event) {
    if (!(event.target instanceof Element)) { return; }
    if (event.target.closest("[data-help-toggle]")) {
      toggleHelp();
      return;
    }
    var row = event.target.closest("[data-inbox] tr[data-row]");
    if (row) {
      var list = rows();
      mark(list, list.indexOf(row), false);
    }
  });

  document.addEventListener("change", function (event) {
    var all = event.target;
    if (!(all instanceof HTMLInputElement) || !all.matches("[data-select-all]")) { return; }
    var form = all.closest("form");
    if (!form) { return; }
    form.querySelectorAll('input[name="selected"]').forEach(function (box) {
      box.checked = all.checked;
    });
  });

  // The way back from an escalation (g i) names the row to put the cursor on; the
  // server marks it, this brings it into view.
  function showCursor() {
    var row = currentRow();
    if (row) { mark(rows(), rows().indexOf(row), true); }
  }

  document.addEventListener("DOMContentLoaded", showCursor);
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target instanceof Element && target.id === "main") { showCursor(); }
  });
}());
