// Pursuit's only script besides htmx: error toasts for htmx requests, and keyboard shortcuts.
(function () {
  "use strict";

  function toast(text) {
    var box = document.getElementById("toast");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.hidden = true; }, 8000);
  }

  // A failed htmx request must say so: nothing is swapped in, so without this the click
  // would look like it did nothing.
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    if (status === 403) {
      toast("Not allowed: your role cannot do this. Reload the page if you were logged out.");
    } else {
      toast("That did not save (error " + status + "). Reload the page and try again.");
    }
  });
  document.addEventListener("htmx:sendError", function () {
    toast("Pursuit could not be reached. Check the connection and try again.");
  });

  // Shortcuts: an element with data-key="x" is clicked (or focused, for a field) when "x" is
  // pressed outside a text field. "/" focuses the search box.
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    var target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
    var key = event.key.length === 1 ? event.key.toLowerCase() : "";
    if (!key) return;
    var element = document.querySelector('[data-key="' + (key === '"' ? '\\"' : key) + '"]');
    if (!element || element.disabled) return;
    event.preventDefault();
    if (element.matches("input, textarea, select")) {
      element.focus();
    } else {
      element.click();
    }
  });
})();
