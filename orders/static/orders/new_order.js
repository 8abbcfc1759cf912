// New order page: service picker with search and category, the fields of the chosen
// service's type, and a live charge preview. The server prices the order again; this is
// only a preview. Money is computed with integers (BigInt), never with binary floats, so
// the preview matches the charge to the last of its 5 decimals (rate × units / per, rounded
// half-up, where `per` is 1000, or 1 for a service billed per package; a subscription's
// units are max × posts). Text from services is inserted with textContent only.
(function () {
  "use strict";

  var dataElement = document.getElementById("services-data");
  var select = document.getElementById("id_service");
  if (!dataElement || !select) {
    return;
  }
  var services = JSON.parse(dataElement.textContent);
  var byId = new Map();
  services.forEach(function (s) {
    byId.set(String(s.id), s);
  });

  var category = document.getElementById("category");
  var search = document.getElementById("service-search");
  var preview = document.getElementById("charge-preview");
  var dripBlock = document.getElementById("dripfeed-block");
  var dripToggle = document.getElementById("id_dripfeed");
  var dripFields = document.getElementById("dripfeed-fields");
  var quantity = document.getElementById("id_quantity");
  var runs = document.getElementById("id_runs");
  var fieldBlocks = Array.prototype.slice.call(document.querySelectorAll(".order-field"));

  function setText(id, text) {
    var element = document.getElementById(id);
    if (element) {
      element.textContent = text;
    }
  }

  function splitList(text) {
    var normal = String(text || "").replace(/\r\n?/g, "\n");
    var items = normal.indexOf("\n") >= 0 ? normal.split("\n") : normal.split(",");
    return items
      .map(function (item) {
        return item.trim();
      })
      .filter(function (item) {
        return item.length > 0;
      });
  }

  function wholeNumber(value) {
    var text = String(value || "").trim();
    return /^\d{1,12}$/.test(text) ? BigInt(text) : null;
  }

  // "1.300000" → 1300000n (millionths)
  function rateMicro(rate) {
    var parts = String(rate).split(".");
    var fraction = ((parts[1] || "") + "000000").slice(0, 6);
    return BigInt(parts[0] || "0") * 1000000n + BigInt(fraction);
  }

  function formatCharge(rate, units, per) {
    // charge × 10^5 = rate_micro × units / (10 × per), rounded half-up
    var divisor = 10n * BigInt(per);
    var scaled = (rateMicro(rate) * units + divisor / 2n) / divisor;
    var text = scaled.toString().padStart(6, "0");
    return text.slice(0, -5) + "." + text.slice(-5);
  }

  function formatMinutes(minutes) {
    if (minutes === null || minutes === undefined) {
      return "—";
    }
    var hours = Math.floor(minutes / 60);
    var rest = minutes % 60;
    if (hours && rest) {
      return hours + " h " + rest + " min";
    }
    return hours ? hours + " h" : rest + " min";
  }

  function currentService() {
    return byId.get(select.value) || null;
  }

  function dripOn(service) {
    return Boolean(service && service.dripfeed && dripToggle && dripToggle.checked);
  }

  function fieldValue(name) {
    var element = document.getElementById("id_" + name);
    return element ? element.value : "";
  }

  function units(service) {
    if (service.billing === "per_package") {
      return 1n;
    }
    if (service.billing === "per_1000_per_post") {
      var most = wholeNumber(fieldValue("max"));
      var posts = String(fieldValue("posts")).trim() === "" ? BigInt(service.max_posts) : wholeNumber(fieldValue("posts"));
      return most === null || posts === null ? null : most * posts;
    }
    if (!service.has_quantity && service.lines_from) {
      return BigInt(splitList(fieldValue(service.lines_from)).length);
    }
    if (service.quantity_from) {
      var list = document.getElementById("id_" + service.quantity_from);
      return BigInt(splitList(list ? list.value : "").length);
    }
    if (!service.has_quantity) {
      return 1n;
    }
    var perRun = wholeNumber(quantity ? quantity.value : "");
    if (perRun === null) {
      return null;
    }
    if (dripOn(service)) {
      var times = wholeNumber(runs ? runs.value : "");
      return times === null ? null : perRun * times;
    }
    return perRun;
  }

  function updatePreview() {
    var service = currentService();
    if (!service || !preview) {
      setText("charge-preview", "—");
      return;
    }
    var count = units(service);
    preview.textContent = count === null || count === 0n ? "—" : formatCharge(service.rate, count, service.per);
  }

  function showService() {
    var service = currentService();
    fieldBlocks.forEach(function (block) {
      var name = block.getAttribute("data-field");
      var visible = service ? service.fields.indexOf(name) >= 0 : name === "link" || name === "quantity";
      block.hidden = !visible;
    });
    if (dripBlock) {
      dripBlock.hidden = !(service && service.dripfeed);
    }
    if (dripFields) {
      dripFields.hidden = !dripOn(service);
    }
    if (quantity && service) {
      quantity.min = String(service.min);
      quantity.max = String(service.max);
    }
    if (!service) {
      setText("info-name", "Choose a service");
      ["info-rate", "info-limits", "info-time", "info-badges"].forEach(function (id) {
        setText(id, "—");
      });
      setText("info-description", "");
    } else {
      setText("info-name", service.name);
      setText("info-rate", service.rate + " " + service.billing_label);
      setText("info-limits", service.min + " / " + service.max);
      setText("info-time", formatMinutes(service.average_time));
      setText(
        "info-badges",
        (service.refill ? "Refill" : "No refill") + " · " + (service.cancel ? "Cancel" : "No cancel")
      );
      setText("info-description", service.description || "");
    }
    updatePreview();
  }

  function rebuildOptions() {
    var chosen = select.value;
    var wanted = category ? category.value : "";
    var query = search ? search.value.trim().toLowerCase() : "";
    Array.prototype.slice.call(select.querySelectorAll("optgroup")).forEach(function (group) {
      group.remove();
    });
    var group = null;
    var groupName = null;
    services.forEach(function (service) {
      if (wanted && service.category !== wanted) {
        return;
      }
      if (query && String(service.id) !== query && service.name.toLowerCase().indexOf(query) < 0) {
        return;
      }
      if (service.category !== groupName) {
        group = document.createElement("optgroup");
        group.label = service.category;
        select.appendChild(group);
        groupName = service.category;
      }
      var option = document.createElement("option");
      option.value = String(service.id);
      option.textContent = service.id + " — " + service.name + " — " + service.rate + " " + service.billing_label;
      option.selected = option.value === chosen;
      group.appendChild(option);
    });
    showService();
  }

  select.addEventListener("change", showService);
  if (category) {
    category.addEventListener("change", rebuildOptions);
  }
  if (search) {
    search.addEventListener("input", rebuildOptions);
  }
  if (dripToggle) {
    dripToggle.addEventListener("change", showService);
  }
  document.getElementById("new-order-form").addEventListener("input", updatePreview);
  showService();
})();
