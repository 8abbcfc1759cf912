// New order page: the measured figures and the expected start and completion of the chosen
// service for the quantity typed, from the `quality` of each service in #services-data
// (medians in seconds; see catalog/quality.py). Text is set with textContent only.
(function () {
  "use strict";

  var box = document.getElementById("service-quality");
  var dataElement = document.getElementById("services-data");
  var select = document.getElementById("id_service");
  if (!box || !dataElement || !select) {
    return;
  }
  var byId = new Map();
  JSON.parse(dataElement.textContent).forEach(function (s) {
    byId.set(String(s.id), s);
  });
  var quantity = document.getElementById("id_quantity");
  var runs = document.getElementById("id_runs");
  var drip = document.getElementById("id_dripfeed");

  function duration(seconds) {
    if (seconds === null || seconds === undefined) {
      return "—";
    }
    if (seconds < 60) {
      return box.dataset.under;
    }
    var minutes = Math.round(seconds / 60);
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    var rest = minutes % 60;
    if (days) {
      return days + " " + box.dataset.d + (hours ? " " + hours + " " + box.dataset.h : "");
    }
    if (hours) {
      return hours + " " + box.dataset.h + (rest ? " " + rest + " " + box.dataset.min : "");
    }
    return rest + " " + box.dataset.min;
  }

  function set(name, text) {
    box.querySelectorAll('[data-eta="' + name + '"]').forEach(function (element) {
      element.textContent = text;
    });
  }

  function units() {
    var text = quantity ? String(quantity.value || "").trim() : "";
    if (!/^\d{1,12}$/.test(text)) {
      return 1000;
    }
    var count = Number(text);
    if (drip && drip.checked && runs && /^\d{1,6}$/.test(String(runs.value || "").trim())) {
      count *= Number(runs.value);
    }
    return count;
  }

  function update() {
    var service = byId.get(select.value) || null;
    var q = service ? service.quality : null;
    var measured = document.getElementById("eta-measured");
    var figures = document.getElementById("eta-figures");
    var unmeasured = document.getElementById("eta-unmeasured");
    box.hidden = !service;
    if (!q || !q.measured) {
      measured.hidden = true;
      figures.hidden = true;
      unmeasured.hidden = !service;
      return;
    }
    unmeasured.hidden = true;
    measured.hidden = false;
    figures.hidden = false;
    set("start", duration(q.start_p50));
    set("complete", q.per1000_p50 === null ? "—" : duration(q.start_p50 + Math.round((q.per1000_p50 * units()) / 1000)));
    set("sample", String(q.sample));
    set("completed", q.completed);
    set("partial", q.partial);
    set("canceled", q.canceled);
    set("start90", duration(q.start_p90));
  }

  select.addEventListener("change", update);
  document.getElementById("new-order-form").addEventListener("input", update);
  document.getElementById("new-order-form").addEventListener("change", update);
  update();
})();
