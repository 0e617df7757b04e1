// The Overview refreshes itself: every 5 s it fetches the live part of the page (the same
// template, rendered by the server) and swaps it in. The toggle pauses it; its state is
// remembered in this browser. Nothing here runs on the other pages.
(function () {
  "use strict";
  var PERIOD_MS = 5000;
  var KEY = "frsync.console.live";

  function start() {
    var region = document.getElementById("live-region");
    var toggle = document.getElementById("live-toggle");
    var status = document.getElementById("live-status");
    if (!region || !toggle || !status) return;
    toggle.checked = window.localStorage.getItem(KEY) !== "off";
    toggle.addEventListener("change", function () {
      window.localStorage.setItem(KEY, toggle.checked ? "on" : "off");
      say(toggle.checked ? "" : "Paused", false);
      if (toggle.checked) refresh();
    });
    if (!toggle.checked) say("Paused", false);

    function say(text, failing) {
      status.textContent = text;
      status.className = failing ? "failing" : "";
    }

    function refresh() {
      if (!toggle.checked) return;
      fetch(region.dataset.src, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (response.status === 401) {
            toggle.checked = false;
            say("Your session has ended: reload to sign in again.", true);
            return null;
          }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          if (html === null) return;
          region.innerHTML = html; // server-rendered and escaped by the same template
          say("", false);
        })
        .catch(function (error) {
          say("Update failed (" + error.message + "); retrying every 5 s.", true);
        });
    }

    window.setInterval(refresh, PERIOD_MS);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
