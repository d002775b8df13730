// Small progressive enhancements; every page works without them (STYLE.md 10).
// - a character counter under every text field with a maxlength (data-counter or textarea)
// - the accounts table's "select every account on this page" box and selection count
// Event delegation on document, so content swapped in by htmx is covered too.
(function () {
  "use strict";

  function counterFor(field) {
    var id = field.id ? field.id + "-counter" : "";
    var el = id ? document.getElementById(id) : null;
    if (!el) {
      el = document.createElement("span");
      el.className = "char-counter";
      el.setAttribute("aria-live", "polite");
      if (id) el.id = id;
      field.insertAdjacentElement("afterend", el);
    }
    return el;
  }

  function updateCounter(field) {
    var max = parseInt(field.getAttribute("maxlength"), 10);
    if (!max) return;
    var el = counterFor(field);
    var used = field.value.length;
    el.textContent = used + " / " + max + " characters";
    el.classList.toggle("near-limit", used >= max * 0.9);
  }

  function wantsCounter(el) {
    return el.matches && el.matches("textarea[maxlength], input[maxlength][data-counter]");
  }

  function initCounters(root) {
    root.querySelectorAll("textarea[maxlength], input[maxlength][data-counter]").forEach(updateCounter);
  }

  // Always the whole document: an htmx swap elsewhere (the bell) must not hide the box.
  function updateSelection() {
    var rows = document.querySelectorAll("input[data-bulk-row]");
    var count = document.querySelector("[data-bulk-count]");
    var ticked = 0;
    rows.forEach(function (r) { if (r.checked) ticked += 1; });
    if (count) count.textContent = ticked ? ticked + " selected on this page" : "";
    var all = document.querySelector("input[data-bulk-page]");
    if (all) {
      all.hidden = rows.length === 0;
      all.checked = rows.length > 0 && ticked === rows.length;
      all.indeterminate = ticked > 0 && ticked < rows.length;
    }
  }

  document.addEventListener("input", function (event) {
    if (wantsCounter(event.target)) updateCounter(event.target);
  });
  document.addEventListener("change", function (event) {
    var t = event.target;
    if (t.matches && t.matches("input[data-bulk-page]")) {
      document.querySelectorAll("input[data-bulk-row]").forEach(function (r) { r.checked = t.checked; });
    }
    if (t.matches && t.matches("input[data-bulk-row], input[data-bulk-page]")) updateSelection();
  });
  function init(root) { initCounters(root); updateSelection(); }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (event) { init(event.target); });
})();
