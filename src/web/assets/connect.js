// plugboard.connect({sessionToken}): opens the operator's hosted connect page for a connect
// session (from POST /connect/sessions on your backend) in a popup, and resolves with
// {status, connection} once the person has connected. Served by the operator at /connect.js;
// no build step and no dependencies.
//
// Errors are Error objects whose name is "PlugboardConnectError" and whose code is one of:
//   blocked_by_browser  the popup was blocked (only with {fallback: "none"}; by default the
//                       page opens in this window instead, and the session's redirectUri
//                       brings the person back)
//   window_closed       the person closed the window before it finished
//   session_expired     the session's time is up; ask your backend for a new one
//   authorization_failed the provider did not grant access
//   invalid_argument    connect() was called without a sessionToken or url
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : window.location.origin;

  function failure(code, message) {
    var error = new Error(message);
    error.name = "PlugboardConnectError";
    error.code = code;
    return error;
  }

  // The session's expiry, read from its (signed, not secret) payload.
  function expiry(token) {
    try {
      var payload = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(window.atob(payload)).exp;
    } catch (e) {
      return null;
    }
  }

  function connect(options) {
    options = options || {};
    return new Promise(function (resolve, reject) {
      var token = options.sessionToken;
      if (!token && !options.url) {
        reject(failure("invalid_argument", "plugboard.connect needs {sessionToken}"));
        return;
      }
      var exp = token ? expiry(token) : null;
      if (exp && exp * 1000 <= Date.now()) {
        reject(failure("session_expired", "the connect session has expired; create a new one"));
        return;
      }
      var url = options.url || base + "/connect/session/" + encodeURIComponent(token);
      var origin = new URL(url, window.location.href).origin;
      var popup = window.open(url + (url.indexOf("?") < 0 ? "?" : "&") + "mode=popup",
        "plugboard-connect", "popup,width=520,height=720");
      if (!popup) {
        if (options.fallback === "none") {
          reject(failure("blocked_by_browser", "the browser blocked the connect window"));
        } else {
          window.location.assign(url);
        }
        return;
      }
      var settled = false;
      var timer = null;
      function settle(fn, value) {
        if (settled) return;
        settled = true;
        window.removeEventListener("message", onMessage);
        clearInterval(timer);
        fn(value);
      }
      function onMessage(event) {
        var data = event.data;
        if (event.origin !== origin || !data || data.type !== "plugboard:connect") return;
        if (data.status === "error") {
          settle(reject, failure(data.error || "authorization_failed", "the connection was not made"));
        } else {
          settle(resolve, { status: data.status, connection: data.connection });
        }
      }
      window.addEventListener("message", onMessage);
      timer = setInterval(function () {
        // A closed window may still have its last message on the way: wait a moment for it.
        if (popup.closed) {
          clearInterval(timer);
          setTimeout(function () {
            settle(reject, failure("window_closed", "the connect window was closed before it finished"));
          }, 300);
        }
      }, 250);
    });
  }

  window.plugboard = window.plugboard || {};
  window.plugboard.connect = connect;
})();
