// The language switcher submits itself on change; without JavaScript its button does.
(function () {
  "use strict";
  document.querySelectorAll("form[data-language-switcher]").forEach(function (form) {
    var select = form.querySelector("select[name=language]");
    var button = form.querySelector("[data-language-submit]");
    if (!select) return;
    if (button) button.hidden = true;
    select.addEventListener("change", function () { form.submit(); });
  });
})();
