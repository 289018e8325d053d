// The control room's live panels: every element with data-live-url is re-rendered from its JSON
// endpoint ({"active": bool, "html": "..."}): every 2 s while work runs, every 20 s when idle.
// Plain script, no dependency and nothing from the internet.
(function () {
  "use strict";
  var FAST = 2000, SLOW = 20000;

  function schedule(panel) {
    var active = panel.getAttribute("data-active") === "true";
    window.setTimeout(function () { refresh(panel); }, active ? FAST : SLOW);
  }

  function refresh(panel) {
    if (document.hidden) { schedule(panel); return; }
    fetch(panel.getAttribute("data-live-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) {
          panel.innerHTML = data.html;
          panel.setAttribute("data-active", data.active ? "true" : "false");
          panel.setAttribute("data-refreshed", String(Date.now()));
          bindCopyButtons(panel);
        }
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { schedule(panel); });
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) { return navigator.clipboard.writeText(text); }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    document.body.removeChild(area);
    return Promise.resolve();
  }

  function bindCopyButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      if (button.dataset.bound) { return; }
      button.dataset.bound = "1";
      button.addEventListener("click", function (event) {
        event.preventDefault();
        copy(button.getAttribute("data-copy")).then(function () {
          var label = button.textContent;
          button.textContent = "copied";
          window.setTimeout(function () { button.textContent = label; }, 1200);
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    bindCopyButtons(document);
    document.querySelectorAll("[data-live-url]").forEach(schedule);
  });
})();
