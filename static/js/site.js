/* Every page: the phone menu, and the file pickers' status lines.
 *
 * Loaded in <head> without defer: the "js" class it sets lets the stylesheet start the
 * phone menu closed, and show the translated file buttons instead of the browser's own
 * (whose "Choose Files" follows the browser's language, not the page's). Without this
 * script the menu stays open and the native file inputs are shown. */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  function setUpMenu() {
    var toggle = document.getElementById("nav-toggle");
    var menu = document.getElementById("site-menu");
    if (!toggle || !menu) {
      return;
    }
    toggle.hidden = false;

    function setOpen(open) {
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      menu.classList.toggle("is-open", open);
    }

    toggle.addEventListener("click", function () {
      setOpen(toggle.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
        setOpen(false);
        toggle.focus();
      }
    });
  }

  // A picker's status line says what was chosen, in the page's language (its data-* texts).
  function setUpFilePickers() {
    document.querySelectorAll(".file-picker").forEach(function (picker) {
      var input = picker.querySelector("input[type=file]");
      var button = picker.querySelector(".file-button");
      var status = picker.querySelector(".file-chosen");
      if (!input) {
        return;
      }
      // Inside a <label> (the upload page's drop zone) a click reaches the input already.
      if (button && !picker.closest("label")) {
        button.addEventListener("click", function () { input.click(); });
      }
      if (!status) {
        return;
      }
      input.addEventListener("change", function () {
        var count = input.files ? input.files.length : 0;
        if (count === 0) {
          status.textContent = status.dataset.none;
        } else if (count === 1) {
          status.textContent = input.files[0].name;
        } else {
          status.textContent = status.dataset.many.replace("{count}", String(count));
        }
      });
    });
  }

  function ready() {
    setUpMenu();
    setUpFilePickers();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
