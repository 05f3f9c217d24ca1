// Pre-select the browser's time zone in the sign-up form (the server checks it anyway). The menu
// offers canonical zones only; a browser may report an old name (Chrome: "Asia/Calcutta"), which
// the option of its zone lists in data-aliases ("Asia/Kolkata" lists "Asia/Calcutta").
(function () {
  "use strict";
  var select = document.querySelector("select[data-detect-timezone]");
  if (!select || select.value !== "UTC") return;
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone) return;
  for (var i = 0; i < select.options.length; i++) {
    var option = select.options[i];
    var aliases = (option.getAttribute("data-aliases") || "").split(" ");
    if (option.value === zone || aliases.indexOf(zone) !== -1) {
      select.value = option.value;
      return;
    }
  }
})();
