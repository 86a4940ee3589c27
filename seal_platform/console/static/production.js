// Live progress of a production run. The 制作 request only starts the run (it goes on in the
// background); the page it returns to lists the steps the station reports, asking the console
// every 700 ms, and reloads once the run has finished so that the order leaves the queue.
(function () {
  "use strict";
  function poll(list, url, timer) {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (view) {
        if (!view) { return; }
        list.textContent = "";
        view.labels.forEach(function (label, index) {
          var item = document.createElement("li");
          var last = index === view.labels.length - 1;
          item.textContent = label + (last && view.running ? " …" : " ✓");
          list.appendChild(item);
        });
        if (view.error_text) {
          var failed = document.createElement("li");
          failed.className = "error";
          failed.textContent = view.error_text;
          list.appendChild(failed);
        }
        if (!view.running) {
          window.clearInterval(timer.id);
          if (!view.error) { window.location.reload(); }
        }
      })
      .catch(function () { /* the next poll tries again */ });
  }
  function follow(list) {
    list.hidden = false;
    var url = list.getAttribute("data-progress");
    var timer = {};
    timer.id = window.setInterval(function () { poll(list, url, timer); }, 700);
  }
  document.querySelectorAll("ol.production-progress[data-running]").forEach(follow);
})();
