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

  // Charts (web/lib/charts.py): a <div data-chart="ID" data-chart-script="URL"> and the
  // figure as JSON in the <script type="application/json" id="ID">. Plotly (4.8 MB of
  // JavaScript, compressed and cached for a year) is fetched from URL only on a page that
  // shows a chart, and only once the page has loaded: parsing it would hold up the page's
  // load by seconds on a tablet, and the rest of the page does not need it. An htmx swap
  // may bring new charts, or new data for a chart that stays (the bedside page polls its
  // figure): a chart is drawn again only when its data changed, with Plotly.react, which
  // keeps the zoom (the figure's uirevision).
  var chartScript = null;
  function loadChartScript() {
    var div = document.querySelector("div[data-chart][data-chart-script]");
    if (chartScript || !div || document.readyState !== "complete") { return; }
    chartScript = document.createElement("script");
    chartScript.src = div.dataset.chartScript;
    chartScript.async = true;
    chartScript.addEventListener("load", drawCharts);
    document.head.appendChild(chartScript);
  }
  function drawCharts() {
    if (!window.Plotly) { loadChartScript(); return; }
    document.querySelectorAll("div[data-chart]").forEach(function (div) {
      var data = document.getElementById(div.dataset.chart);
      if (!data || div.chartSource === data.textContent) { return; }
      div.chartSource = data.textContent;
      var fig = JSON.parse(data.textContent);
      var config = div.dataset.chartConfig ? JSON.parse(div.dataset.chartConfig) : {};
      window.Plotly.react(div, fig.data, fig.layout, config);
      div.setAttribute("data-drawn", "");
    });
  }
  if (document.readyState === "complete") {
    drawCharts();
  } else {
    // After the load event's handlers (a script added in one would delay its end).
    window.addEventListener("load", function () { setTimeout(drawCharts, 0); });
  }
  document.addEventListener("htmx:afterSettle", drawCharts);

  // Small behaviours that would otherwise be inline event handlers (the policy allows
  // none): <button data-print> prints the page, <input data-select-on-click> selects its
  // text, <select data-submit-on-change> submits its form.
  document.addEventListener("click", function (e) {
    var target = e.target instanceof Element ? e.target : null;
    if (!target) { return; }
    if (target.closest("[data-print]")) {
      window.print();
    }
    var select = target.closest("input[data-select-on-click]");
    if (select) { select.select(); }
  });
  document.addEventListener("change", function (e) {
    var target = e.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-submit-on-change")
        && target.form) {
      target.form.requestSubmit();
    }
  });

  // <div hx-trigger="every 15s" data-poll-paused-while-focused>: a poll that would replace
  // what someone is typing into is skipped (the next one comes soon enough). This is the
  // check htmx trigger filters ("every 15s [...]") would make, without evaluating code.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (e.detail.requestConfig && e.detail.requestConfig.triggeringEvent) { return; }
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-poll-paused-while-focused")) {
      return;
    }
    var active = document.activeElement;
    if (active && active !== document.body && elt.contains(active)) {
      e.preventDefault();
    }
  });
})();
