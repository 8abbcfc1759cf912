// The panel's small scripts. No inline scripts anywhere: the CSP allows only 'self'.
(function () {
  "use strict";

  // Ticket form: the order fields only matter for an order ticket.
  function syncTicketKind(form) {
    var kind = form.querySelector("[name=kind]");
    if (!kind) return;
    var isOrder = kind.value === "order";
    form.querySelectorAll("[data-order-only]").forEach(function (el) {
      el.hidden = !isOrder;
    });
  }
  document.querySelectorAll("form[data-ticket-form]").forEach(function (form) {
    syncTicketKind(form);
    form.addEventListener("change", function (event) {
      if (event.target.name === "kind") syncTicketKind(form);
    });
  });

  // Account page: offer the browser's own time zone.
  document.querySelectorAll("[data-detect-timezone]").forEach(function (button) {
    var zone;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { zone = ""; }
    var select = document.getElementById(button.getAttribute("data-detect-timezone"));
    if (!zone || !select || select.value === zone) return;
    if (!select.querySelector('option[value="' + zone.replace(/"/g, "") + '"]')) return;
    button.hidden = false;
    // The words come translated from the template (data-label); without them the button keeps its own.
    var words = button.getAttribute("data-label");
    if (words) button.textContent = words.replace("%(zone)s", zone.replace(/_/g, " "));
    button.addEventListener("click", function () { select.value = zone; });
  });

  // Light or dark: the choice is remembered in localStorage (panel-theme.js applies it
  // before the page paints); without one, the system's preference decides.
  document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
    button.addEventListener("click", function () {
      var root = document.documentElement;
      var next = root.getAttribute("data-bs-theme") === "dark" ? "light" : "dark";
      root.setAttribute("data-bs-theme", next);
      try { window.localStorage.setItem("panel-theme", next); } catch (e) { /* private mode */ }
    });
  });
})();
