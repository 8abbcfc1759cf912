// The colour mode, set before the page paints: the visitor's choice (kept in localStorage
// by panel.js), else the system's preference. Bootstrap 5.3 reads data-bs-theme.
(function () {
  "use strict";
  var stored = null;
  try { stored = window.localStorage.getItem("panel-theme"); } catch (e) { stored = null; }
  var dark = stored ? stored === "dark" : window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.setAttribute("data-bs-theme", dark ? "dark" : "light");
})();
