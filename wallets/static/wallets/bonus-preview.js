// Shows the bonus a typed deposit amount earns. The server computes it (one rounding rule),
// this only asks: inputs carry data-bonus-preview (the URL) and data-bonus-target (an id).
(function () {
  "use strict";
  document.querySelectorAll("input[data-bonus-preview]").forEach(function (input) {
    var target = document.getElementById(input.dataset.bonusTarget);
    var timer = null;
    var latest = 0;
    function update() {
      var amount = input.value.trim();
      var ticket = ++latest;
      if (!amount) { target.textContent = ""; return; }
      var url = input.dataset.bonusPreview + "?amount=" + encodeURIComponent(amount);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { text: "" }; })
        .then(function (data) { if (ticket === latest) { target.textContent = data.text || ""; } })
        .catch(function () { target.textContent = ""; });
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(update, 250);
    });
    if (input.value) { update(); }
  });
})();
