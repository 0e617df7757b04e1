// The Overview refreshes itself: every 10 s it fetches the live part of the page (the same
// template, rendered by the server) and swaps it in. Each fetch spends one request of the
// signed-in token's rate limit (2/s by default), so this costs a tenth of one per second.
// Over the limit (429), it says so and waits the server's Retry-After (at least 10 s)
// before trying again. The toggle pauses it; its state is remembered in this browser.
// Nothing here runs on the other pages.
(function () {
  "use strict";
  var PERIOD_MS = 10000;
  var KEY = "frsync.console.live";

  function start() {
    var region = document.getElementById("live-region");
    var toggle = document.getElementById("live-toggle");
    var status = document.getElementById("live-status");
    if (!region || !toggle || !status) return;
    var timer = null;
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

    function later(ms) {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, ms);
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
          if (response.status === 429) {
            var wait = parseInt(response.headers.get("Retry-After") || "", 10);
            var ms = Math.max(PERIOD_MS, (isNaN(wait) ? 0 : wait) * 1000);
            say("Over this token's rate limit: next update in " + Math.round(ms / 1000) + " s.", true);
            later(ms);
            return null;
          }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text().then(function (html) {
            region.innerHTML = html; // server-rendered and escaped by the same template
            say("", false);
            later(PERIOD_MS);
            return null;
          });
        })
        .catch(function (error) {
          say("Update failed (" + error.message + "); retrying in 10 s.", true);
          later(PERIOD_MS);
        });
    }

    later(PERIOD_MS);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
