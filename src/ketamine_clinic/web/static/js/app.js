// The clinic's page script, served from the app (the Content Security Policy allows no
// inline script). Settings come from data attributes on <body>.
(function () {
  "use strict";
  var body = document.body;

  // Requests the page makes by itself (htmx "every" polls and "load" triggers have no
  // triggering user event) are marked, so that the server does not count them as
  // activity: idle logoff still fires on a board or bedside page left open.
  document.addEventListener("htmx:configRequest", function (e) {
    if (!e.detail.triggeringEvent) {
      e.detail.headers["X-Background-Request"] = "poll";
    }
  });

  // <select data-navigate-on-change="NAME">: reload the page with ?NAME=<the choice>.
  document.addEventListener("change", function (e) {
    var name = e.target && e.target.dataset && e.target.dataset.navigateOnChange;
    if (name) {
      window.location = "?" + encodeURIComponent(name) + "=" + encodeURIComponent(e.target.value);
    }
  });

  // Mirror the server's idle logoff: once the session has expired, show the login page.
  var idleS = Number(body.dataset.idleLogoutSeconds || 0);
  var loginUrl = body.dataset.loginUrl;
  if (idleS > 0 && loginUrl) {
    var timer;
    var reset = function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        window.location = loginUrl + "?next=" + encodeURIComponent(location.pathname);
      }, idleS * 1000 + 2000);
    };
    ["click", "keydown"].forEach(function (name) { document.addEventListener(name, reset); });
    document.addEventListener("htmx:afterRequest", function (e) {
      if (e.detail.requestConfig && e.detail.requestConfig.triggeringEvent) { reset(); }
    });
    reset();
  }

  // Charts (web/lib/charts.py): a <div data-chart="ID"> and the figure as JSON in the
  // <script type="application/json" id="ID">. Plotly is loaded with "defer", so it is
  // there by DOMContentLoaded; htmx swaps bring new charts.
  function drawCharts() {
    if (!window.Plotly) { return; }
    document.querySelectorAll("div[data-chart]:not([data-drawn])").forEach(function (div) {
      var data = document.getElementById(div.dataset.chart);
      if (!data) { return; }
      var fig = JSON.parse(data.textContent);
      div.setAttribute("data-drawn", "");
      window.Plotly.newPlot(div, fig.data, fig.layout, JSON.parse(div.dataset.chartConfig));
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawCharts);
  } else {
    drawCharts();
  }
  document.addEventListener("htmx:afterSettle", drawCharts);
})();
