/* Waypost console: keyboard shortcuts and select-all. Nothing else lives here: every
   page works without this file, and htmx does the requests. No eval, no inline code,
   so the Content-Security-Policy (script-src 'self') holds. */
(function () {
  "use strict";

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

  function submitForm(id) {
    var form = document.getElementById(id);
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
    var element = (root || document).querySelector(selector);
    if (!element) { return false; }
    element.click();
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
    }
  };

  // After a refused decision (409) the page shows the escalation as it is now; the a key
  // must not approve what the reviewer has not read yet. It shows them why instead; the
  // buttons (a deliberate click) and a reloaded page work as usual.
  function approve() {
    if (document.querySelector("[data-escalation][data-conflict]")) {
      var notice = document.getElementById("conflict");
      if (notice) {
        notice.focus();
        notice.scrollIntoView({ block: "center" });
      }
      return true;
    }
    return submitForm("approve-form");
  }

  var escalationKeys = {
    a: approve,
    r: function () { return focusField("reject-reason"); },
    e: function () { return focusField("edit-output"); },
    c: function () { return clickElement("#claim-button"); }
  };

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) { return; }
    if (event.key === "Escape") {
      if (typing(event.target)) { event.target.blur(); }
      toggleHelp(false);
      return;
    }
    if (typing(event.target)) { return; }
    var handled = false;
    if (event.key === "?") {
      toggleHelp();
      handled = true;
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
        escalationKeys[event.key]();
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
}());
