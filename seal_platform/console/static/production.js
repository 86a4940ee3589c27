// Live progress of a production run: while the 制作 request is running (the page waits for its
// answer), ask the console every 700 ms which steps the station has reported and list them.
(function () {
  "use strict";
  function poll(list, url) {
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
      })
      .catch(function () { /* the next poll tries again */ });
  }
  document.querySelectorAll("form.produce-form").forEach(function (form) {
    form.addEventListener("submit", function () {
      var list = form.parentNode.querySelector("ol.production-progress");
      if (!list) { return; }
      list.hidden = false;
      var url = form.getAttribute("data-progress");
      window.setInterval(function () { poll(list, url); }, 700);
    });
  });
})();
