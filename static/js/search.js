// The header's global search (templates/workspace/_search_box.html): "/" focuses the box
// from anywhere but a text field; Escape clears the results; ArrowDown moves into them.
// A static file, no inline script, so the strict Content-Security-Policy holds.
(function () {
  "use strict";
  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }
  document.addEventListener("keydown", function (event) {
    var box = document.getElementById("global-search-q");
    if (!box) return;
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey && !typing(document.activeElement)) {
      event.preventDefault();
      box.focus();
      box.select();
      return;
    }
    var results = document.getElementById("global-search-results");
    if (event.key === "Escape" && results && results.contains(document.activeElement) || event.key === "Escape" && document.activeElement === box) {
      results.innerHTML = "";
      box.blur();
      return;
    }
    if (event.key === "ArrowDown" && document.activeElement === box && results) {
      var first = results.querySelector("a");
      if (first) { event.preventDefault(); first.focus(); }
    }
  });
})();
