// New order page: service picker with search and category, the fields of the chosen
// service's type, and a live charge preview. The server prices the order again; this is
// only a preview. Money is computed with integers (BigInt), never with binary floats, so
// the preview matches the charge to the last of its 5 decimals (rate × units / per, rounded
// half-up, where `per` is 1000, or 1 for a service billed per package; a subscription's
// units are max × posts). It is shown by the pages' display rule (panel/money_display.py:
// the currency's decimals, more only for a small non-zero amount, in the display currency
// the form's data attributes name), and compared with the balance to warn before an order
// the balance cannot pay. Text from services is inserted with textContent only.
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
  var form = document.getElementById("new-order-form");
  var warning = document.getElementById("funds-warning");
  var display = {
    currency: form.dataset.currency || "",
    decimals: parseInt(form.dataset.decimals || "2", 10),
    rate: form.dataset.rate || "1",
    approx: form.dataset.approx === "1",
    lang: document.documentElement.lang || "en"
  };
  var SMALL_VALUE_DIGITS = 2;
  var MAX_DECIMALS = 6;

  function label(name) {
    return form.getAttribute("data-label-" + name) || "";
  }

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

  function chargeScaled(rate, units, per) {
    // charge × 10^5 = rate_micro × units / (10 × per), rounded half-up (the server's rule)
    var divisor = 10n * BigInt(per);
    return (rateMicro(rate) * units + divisor / 2n) / divisor;
  }

  // A decimal string as (digits, scale): "0.92" → [92n, 2]
  function scaledOf(text) {
    var parts = String(text).split(".");
    var fraction = parts[1] || "";
    return [BigInt((parts[0] || "0") + fraction), fraction.length];
  }

  function pow10(n) {
    return 10n ** BigInt(n);
  }

  // value / 10^scale shown by the display rule: the currency's decimals, more (up to 6)
  // only where that would show a small non-zero value as zero or hide most of it.
  function readable(value, scale, decimals) {
    var negative = value < 0n;
    var v = negative ? -value : value;
    var places = decimals;
    if (v !== 0n && v < pow10(scale)) {
      var adjusted = v.toString().length - 1 - scale;
      places = Math.max(decimals, Math.min(-adjusted + SMALL_VALUE_DIGITS - 1, MAX_DECIMALS));
    }
    var rounded = places < scale ? (v + pow10(scale - places) / 2n) / pow10(scale - places) : v * pow10(places - scale);
    var text = rounded.toString().padStart(places + 1, "0");
    var whole = text.slice(0, text.length - places);
    var fraction = text.slice(text.length - places);
    if (places > decimals) {
      fraction = fraction.replace(/0+$/, "");
      if (fraction.length < decimals) fraction = fraction.padEnd(decimals, "0");
    }
    var number = Number(whole + (fraction ? "." + fraction : ""));
    var shown = number.toLocaleString(display.lang, { minimumFractionDigits: fraction.length, maximumFractionDigits: fraction.length });
    return (negative ? "-" : "") + shown;
  }

  // An amount in the panel's currency (scaled by 10^5) as text in the display currency.
  function moneyText(scaled) {
    var rate = scaledOf(display.rate);
    var text = readable(scaled * rate[0], 5 + rate[1], display.decimals) + " " + display.currency;
    return display.approx ? "≈ " + text : text;
  }

  function rateText(service) {
    var micro = rateMicro(service.rate);
    return readableRate(micro) + " " + (label(service.billing) || service.billing_label);
  }

  function readableRate(micro) {
    var rate = scaledOf(display.rate);
    var text = readable(micro * rate[0], 6 + rate[1], display.decimals) + " " + display.currency;
    return display.approx ? "≈ " + text : text;
  }

  var balance = scaledOf(form.dataset.balance || "0");
  var balanceScaled = balance[1] <= 5 ? balance[0] * pow10(5 - balance[1]) : balance[0] / pow10(balance[1] - 5);

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
    var over = false;
    if (!service || !preview) {
      setText("charge-preview", "—");
    } else {
      var count = units(service);
      if (count === null || count === 0n) {
        preview.textContent = "—";
      } else {
        var charge = chargeScaled(service.rate, count, service.per);
        preview.textContent = moneyText(charge);
        over = charge > balanceScaled;
      }
    }
    if (warning) {
      warning.classList.toggle("d-none", !over);
    }
  }

  // Every type's form starts valid: the service's minimum where a number is needed.
  function fillDefaults(service) {
    function fill(name, value) {
      var element = document.getElementById("id_" + name);
      if (element && String(element.value).trim() === "" && service.fields.indexOf(name) >= 0) {
        element.value = String(value);
      }
    }
    if (service.billing === "per_1000_per_post") {
      fill("min", service.min);
      fill("max", service.min);
    } else if (service.has_quantity && !service.quantity_from) {
      fill("quantity", service.min);
    }
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
    if (service) {
      fillDefaults(service);
    }
    var infoName = document.getElementById("info-name");
    if (infoName) {
      // The service's name and description are the catalogue's data, not the panel's words.
      infoName.toggleAttribute("data-i18n-skip", Boolean(service));
    }
    if (!service) {
      setText("info-name", label("choose"));
      ["info-rate", "info-limits", "info-time", "info-badges"].forEach(function (id) {
        setText(id, "—");
      });
      setText("info-description", "");
    } else {
      setText("info-name", service.name);
      setText("info-rate", rateText(service));
      setText(
        "info-limits",
        service.billing === "per_package"
          ? label("package")
          : service.min + " / " + service.max + (service.billing === "per_1000_per_post" ? " " + label("per-post") : "")
      );
      setText("info-time", formatMinutes(service.average_time));
      setText(
        "info-badges",
        (service.refill ? label("refill") : label("no-refill")) + " · " + (service.cancel ? label("cancel") : label("no-cancel"))
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
      option.textContent = service.id + " — " + service.name + " — " + rateText(service);
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
  form.addEventListener("input", updatePreview);
  showService();
})();
