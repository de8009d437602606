// The hosted connect page's only script, served from the operator itself so that the
// page's Content-Security-Policy can stay at default-src 'self'. The form works without it;
// it finishes a result page: in a popup, it tells the opener how the connection went (only
// an opener on the session's redirect origin can read it) and closes; otherwise it goes on
// to the session's redirect address.
(function () {
  "use strict";
  var main = document.getElementById("plugboard-connect");
  if (!main) return;
  var data = main.dataset;
  if (data.view === "form") {
    var form = main.querySelector("form");
    if (form) {
      form.addEventListener("submit", function () {
        var button = form.querySelector("button[type=submit]");
        if (button) {
          // Posting twice would apply the same input twice; say that it is on its way.
          setTimeout(function () { button.disabled = true; button.textContent = "Connecting…"; }, 0);
        }
      });
    }
    return;
  }
  if (data.view !== "result") return;
  var opener = window.opener;
  if (data.popup === "true" && opener && data.origin) {
    var message = { type: "plugboard:connect", status: data.status, connection: data.connection };
    if (data.error) message.error = data.error;
    opener.postMessage(message, data.origin);
    // A moment for the message to be delivered before the window goes.
    setTimeout(function () { window.close(); }, 150);
    return;
  }
  if (data.redirect) window.location.replace(data.redirect);
})();
