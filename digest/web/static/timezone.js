// Pre-select the browser's time zone in the sign-up form (the server checks it anyway).
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
  for (var i = 0; i < select.options.length; i++) {
    if (select.options[i].value === zone) {
      select.value = zone;
      return;
    }
  }
})();
