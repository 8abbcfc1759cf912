// The language switcher is a <details>: it opens and posts without script. This closes it
// on a click elsewhere or on Escape, as a menu is expected to.
(function () {
  "use strict";
  document.querySelectorAll("details[data-language-switcher]").forEach(function (menu) {
    document.addEventListener("click", function (event) {
      if (menu.open && !menu.contains(event.target)) menu.open = false;
    });
    menu.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  });
})();
