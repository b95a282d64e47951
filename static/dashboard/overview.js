/* Overview: KPI cards, Chart.js charts and top lists for a chosen date range (staff stats API). */
(function () {
  "use strict";
  var cfg = LC.config();
  var form = document.getElementById("range-form");
  var charts = {};
  var COLORS = {
    in_progress: "#0dcaf0", complete: "#198754", incomplete: "#6c757d",
    unchecked: "#adb5bd", passed: "#198754", issue: "#dc3545", fixed: "#ffc107",
  };

  function themeColors() {
    var style = getComputedStyle(document.documentElement);
    return {
      text: style.getPropertyValue("--bs-body-color").trim() || "#212529",
      grid: style.getPropertyValue("--bs-border-color-translucent").trim() || "rgba(0,0,0,.1)",
    };
  }
  /* Charts take their text and grid colours from Chart.defaults, resolved at each update, so a
     theme switch only has to change the defaults and redraw. */
  function applyTheme() {
    var colors = themeColors();
    Chart.defaults.color = colors.text;
    Chart.defaults.borderColor = colors.grid;
    Object.values(charts).forEach(function (chart) { chart.update(); });
  }

  function setRange(days) {
    quickDays = days;
    var today = new Date();
    var start = new Date(today.getFullYear(), today.getMonth(), today.getDate() - (days - 1));
    form.elements.namedItem("date_from").value = LC.localISODate(start);
    form.elements.namedItem("date_to").value = LC.localISODate(today);
    form.querySelectorAll("[data-range]").forEach(function (button) {
      var active = Number(button.dataset.range) === days;
      button.classList.toggle("active", active);
      button.setAttribute("aria-pressed", String(active));
    });
  }

  function number(value, digits) {
    return new Intl.NumberFormat(undefined, { maximumFractionDigits: digits || 0 }).format(value);
  }

  function renderKpis(totals) {
    var values = {
      sessions: number(totals.sessions),
      leads: number(totals.leads),
      conversion_rate: number(totals.conversion_rate * 100, 1) + " %",
      needs_human: number(totals.needs_human),
      avg_messages: number(totals.avg_messages, 1),
      avg_ai_latency_ms: totals.avg_ai_latency_ms === null ? "—" : number(totals.avg_ai_latency_ms / 1000, 2) + " s",
      ai_tokens: number(totals.ai_tokens),
      ai_tokens_per_lead: totals.ai_tokens_per_lead === null ? "no leads yet" : number(totals.ai_tokens_per_lead) + " per lead",
      // Costs arrive as decimal strings (exact); four places are plenty on a card.
      ai_cost_per_lead: totals.ai_cost_per_lead === null ? "—" : number(Number(totals.ai_cost_per_lead), 4),
      ai_cost: number(Number(totals.ai_cost), 4) + " in total",
    };
    Object.entries(values).forEach(function (pair) {
      var node = document.querySelector('[data-kpi="' + pair[0] + '"]');
      if (node) node.textContent = pair[1];
    });
  }

  /* The widget's funnel: each step with its share of the step before ("—" without one). */
  function renderFunnel(funnel) {
    function share(part, whole, who) { return whole ? number(part / whole * 100, 1) + " % of those who " + who : "—"; }
    var values = {
      opened: number(funnel.opened),
      engaged: number(funnel.engaged),
      engaged_rate: share(funnel.engaged, funnel.opened, "opened"),
      leads: number(funnel.leads),
      leads_rate: share(funnel.leads, funnel.engaged, "wrote"),
    };
    Object.entries(values).forEach(function (pair) {
      document.querySelector('[data-funnel="' + pair[0] + '"]').textContent = pair[1];
    });
  }

  function upsertChart(id, config) {
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].update();
    } else {
      charts[id] = new Chart(document.getElementById(id), config);
    }
  }

  function doughnut(id, counts, kind) {
    var keys = Object.keys(counts);
    upsertChart(id, {
      type: "doughnut",
      data: {
        labels: keys.map(function (k) { return LC.badgeOf(kind, k).label; }),
        datasets: [{ data: keys.map(function (k) { return counts[k]; }), backgroundColor: keys.map(function (k) { return COLORS[k] || "#6c757d"; }) }],
      },
      options: { maintainAspectRatio: false, plugins: { legend: { position: "bottom" } } },
    });
  }

  function renderCharts(stats) {
    var days = stats.per_day.map(function (d) {
      var parts = d.date.split("-");
      return new Date(Number(parts[0]), Number(parts[1]) - 1, Number(parts[2]))
        .toLocaleDateString(undefined, { month: "short", day: "numeric" });
    });
    upsertChart("chart-per-day", {
      type: "line",
      data: {
        labels: days,
        datasets: [
          { label: "Sessions", data: stats.per_day.map(function (d) { return d.sessions; }), borderColor: "#0d6efd", backgroundColor: "rgba(13,110,253,.15)", fill: true, tension: 0.25 },
          { label: "Leads", data: stats.per_day.map(function (d) { return d.leads; }), borderColor: "#198754", backgroundColor: "rgba(25,135,84,.15)", fill: true, tension: 0.25 },
        ],
      },
      options: {
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
    doughnut("chart-completion", stats.completion, "completion");
    doughnut("chart-qa", stats.qa, "qa");
    applyTheme();
  }

  function renderTable(id, rows, labelOf) {
    var body = document.getElementById(id);
    if (!rows.length) {
      body.replaceChildren(LC.el("tr", {}, [LC.el("td", { colspan: "3", className: "text-body-secondary", text: "No sessions in this range." })]));
      return;
    }
    body.replaceChildren.apply(body, rows.map(function (row) {
      return LC.el("tr", {}, [
        LC.el("td", { className: "text-break small", text: labelOf(row) }),
        LC.el("td", { className: "text-end", text: number(row.sessions) }),
        LC.el("td", { className: "text-end", text: number(row.leads) }),
      ]);
    }));
  }

  /* The range is in the address, so a reload keeps it and a link shares it: ?days=7 for a
     quick range (none for the default 30), ?date_from=...&date_to=... for a custom one. A value
     no control can hold (?site=bogus, a mistyped date) is sent as it is: the API's 400 names it
     on the page instead of the overview quietly showing something else. */
  var FIELDS = ["date_from", "date_to", "site"];
  var unheld = {};
  var quickDays = 30;

  function input(name) { return form.elements.namedItem(name); }

  function readUrl() {
    var params = new URLSearchParams(window.location.search);
    var days = params.get("days");
    if (days !== null && !/^(7|30|90)$/.test(days)) unheld.days = days;
    setRange(days && !unheld.days ? Number(days) : 30);
    if (params.has("date_from") || params.has("date_to")) markCustom();
    FIELDS.forEach(function (name) {
      var control = input(name);
      if (!params.has(name)) return;
      var raw = params.get(name);
      if (control) control.value = raw;
      if (raw && (!control || control.value !== raw)) unheld[name] = raw;
    });
  }

  function writeUrl() {
    var params = new URLSearchParams();
    if (quickDays) {
      if (quickDays !== 30) params.set("days", String(quickDays));
    } else {
      params.set("date_from", input("date_from").value);
      params.set("date_to", input("date_to").value);
    }
    var site = input("site");
    if (site && site.value) params.set("site", site.value);
    var query = params.toString();
    window.history.replaceState(null, "", query ? "?" + query : window.location.pathname);
  }

  function markCustom() {
    quickDays = 0;
    form.querySelectorAll("[data-range]").forEach(function (button) {
      button.classList.remove("active");
      button.setAttribute("aria-pressed", "false");
    });
  }

  /* No figure of another range stays on screen beside an error. */
  function clearFigures() {
    document.querySelectorAll("[data-kpi], [data-funnel]").forEach(function (node) { node.textContent = "–"; });
    Object.keys(charts).forEach(function (id) { charts[id].destroy(); delete charts[id]; });
    ["top-pages", "utm-sources", "channels"].forEach(function (id) {
      var body = document.getElementById(id);
      if (body) body.replaceChildren();
    });
    delete document.body.dataset.statsLoaded;
  }

  function showProblem(message) {
    var box = document.getElementById("stats-error");
    box.textContent = message;
    box.classList.remove("d-none");
    clearFigures();
  }

  /* The API's message for the parameter it refused, named by the control's label. */
  var LABELS = { date_from: "From", date_to: "To", site: "Site", tz: "Time zone" };
  function messageOf(error) {
    var fields = error.data && error.data.fields;
    if (fields && typeof fields === "object" && !Array.isArray(fields)) {
      var name = Object.keys(fields)[0];
      var first = fields[name];
      if (LABELS[name] && Array.isArray(first) && typeof first[0] === "string") {
        return LABELS[name] + ": " + first[0];
      }
    }
    return error.message;
  }

  async function load() {
    var params = new URLSearchParams();
    FIELDS.forEach(function (name) {
      var control = input(name);
      if (control && control.value) params.set(name, control.value);
      else if (unheld[name]) params.set(name, unheld[name]);
    });
    var zone = LC.timeZone();
    if (zone) params.set("tz", zone);
    var box = document.getElementById("stats-error");
    if (unheld.days) {
      showProblem('Unknown range "' + unheld.days + '" in the address: use 7, 30 or 90 days, or pick the dates.');
      return;
    }
    var from = params.get("date_from"), to = params.get("date_to");
    if (from && to && /^\d{4}-\d{2}-\d{2}$/.test(from) && /^\d{4}-\d{2}-\d{2}$/.test(to) && from > to) {
      showProblem("The start date (" + from + ") is after the end date (" + to + "): pick a start on or before the end.");
      return;
    }
    try {
      var stats = await LC.api(cfg.api.stats + "?" + params.toString());
      box.classList.add("d-none");
      renderKpis(stats.totals);
      renderFunnel(stats.funnel);
      renderCharts(stats);
      renderTable("top-pages", stats.top_pages, function (row) {
        try { var url = new URL(row.page_url); return url.host + url.pathname; } catch (e) { return row.page_url; }
      });
      renderTable("utm-sources", stats.utm_sources, function (row) { return row.utm_source || "(none)"; });
      renderTable("channels", stats.channels, function (row) { return LC.badgeOf("channel", row.channel).label; });
      document.body.dataset.statsLoaded = "true";
    } catch (error) {
      showProblem(messageOf(error));
    }
  }

  form.querySelectorAll("[data-range]").forEach(function (button) {
    button.addEventListener("click", function () {
      unheld = {};
      setRange(Number(button.dataset.range));
      writeUrl();
      load();
    });
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    unheld = {};
    markCustom();
    writeUrl();
    load();
  });
  document.addEventListener("leadchat:theme", applyTheme);
  /* The KPIs follow the changes feed (polled by notify.js): a changed session re-reads the
     stats, at most once per burst. */
  var reloadTimer = null;
  document.addEventListener("leadchat:changes", function (event) {
    if (event.detail.first || !event.detail.rows.length || reloadTimer) return;
    reloadTimer = window.setTimeout(function () { reloadTimer = null; load(); }, 300);
  });
  readUrl();
  load();
})();
