// The waiting page listens to the console's server-sent events and redraws its table when the list changes.
// Everything else works without this script: the pages are whole HTML, every action is a plain form.
"use strict";
(function () {
  var body = document.querySelector("[data-waiting]");
  var status = document.getElementById("live-status");
  if (!body || !window.EventSource) { return; }
  function redraw() {
    fetch("/waiting", {credentials: "same-origin", headers: {"Accept": "text/html"}}).then(function (answer) {
      if (answer.status !== 200) { return null; }
      return answer.text();
    }).then(function (html) {
      if (html === null) { return; }
      body.innerHTML = html;
      var count = body.querySelectorAll("tr[data-plan]").length;
      if (status) { status.textContent = count + " plan(s) waiting, updated " + new Date().toLocaleTimeString(); }
    });
  }
  var events = new EventSource("/events");
  events.addEventListener("waiting", redraw);
  events.addEventListener("open", function () { if (status) { status.dataset.live = "yes"; } });
})();
