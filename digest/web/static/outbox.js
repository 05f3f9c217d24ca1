// The outbox's message page: size the email's frame to the email, so the page scrolls as one
// (without this script the frame is as tall as the window). The email runs no script of its own:
// its frame is sandboxed without allow-scripts, and its own CSP allows none.
(function () {
  "use strict";
  var frame = document.querySelector("iframe.mail-frame");
  if (!frame) return;
  function fit() {
    var doc = frame.contentDocument;
    if (!doc || !doc.documentElement || doc.URL === "about:blank") return;
    frame.style.height = "0";  // measure the email at this width, not the frame's old height
    frame.style.height = Math.ceil(doc.documentElement.scrollHeight) + 2 + "px";  // + its borders
  }
  var pending;
  frame.addEventListener("load", fit);
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(fit, 100);
  });
  if (frame.contentDocument && frame.contentDocument.readyState === "complete") fit();
})();
