// Closing the announcement banner remembers which one was closed (a cookie the server reads,
// so the same banner is not drawn again; a newer announcement shows).
(function () {
  var banner = document.getElementById("announcement");
  if (!banner) return;
  var close = banner.querySelector("[data-announcement-close]");
  close.addEventListener("click", function () {
    var secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = banner.dataset.cookie + "=" + encodeURIComponent(banner.dataset.announcement) +
      "; Path=/; Max-Age=31536000; SameSite=Lax" + secure;
    banner.remove();
  });
})();
