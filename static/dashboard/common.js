/* Shared helpers of the dashboard pages: config, API calls, time formatting, toasts.
   Stored text is only ever put in the page with textContent, never innerHTML. */
(function () {
  "use strict";

  function config() {
    var node = document.getElementById("dashboard-config");
    return node ? JSON.parse(node.textContent) : {};
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  async function api(url, options) {
    options = options || {};
    var init = {
      method: options.method || "GET",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    };
    if (init.method !== "GET") {
      init.headers["X-CSRFToken"] = csrfToken();
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body || {});
    }
    var response = await fetch(url, init);
    var data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      var error = new Error((data && data.error) || "The server answered " + response.status + ".");
      error.status = response.status;
      error.data = data;
      throw error;
    }
    return data;
  }

  var dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  var timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

  function formatDateTime(iso) {
    if (!iso) return "—";
    var date = new Date(iso);
    return isNaN(date) ? iso : dateTimeFormat.format(date);
  }
  function formatTime(iso) {
    var date = new Date(iso);
    return isNaN(date) ? iso : timeFormat.format(date);
  }
  function localISODate(date) {
    var pad = function (n) { return String(n).padStart(2, "0"); };
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate());
  }
  function timeZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      return "";
    }
  }

  /* Re-render every <time datetime> in the browser's zone (the server guessed from a cookie). */
  function localizeTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (node) {
      var iso = node.getAttribute("datetime");
      if (!iso) return;
      node.title = iso;
      node.textContent = node.dataset.format === "time" ? formatTime(iso) : formatDateTime(iso);
    });
  }

  /* el("a", {href: "...", className: "x"}, ["text", otherNode]) */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function (pair) {
      var key = pair[0], value = pair[1];
      if (value === null || value === undefined || value === false) return;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    });
    return node;
  }

  /* The look of a status (label, Bootstrap colour, its label in the list) comes from the page
     config, written once on the server (sessions_app.badges). */
  var badges = null;
  function badgeOf(kind, value) {
    if (badges === null) badges = config().badges || {};
    var found = badges[kind] && badges[kind][value];
    return found || { label: value, style: "secondary", listLabel: value };
  }
  function badge(kind, value, extraClass) {
    var look = badgeOf(kind, value);
    return el("span", {
      className: "badge text-bg-" + look.style + (extraClass ? " " + extraClass : ""),
      text: look.listLabel,
    });
  }

  var UNDO_TOAST_MS = 20000;

  function toast(message, options) {
    options = options || {};
    var container = document.getElementById("toasts");
    if (!container || !window.bootstrap) return null;
    var body = el("div", { className: "toast-body d-flex align-items-center gap-2" }, [
      el("span", { className: "me-auto", text: message }),
    ]);
    var node = el("div", {
      className: "toast align-items-center" + (options.error ? " text-bg-danger" : ""),
      role: options.error ? "alert" : "status",
      "aria-atomic": "true",
    }, [body]);
    if (options.undo) {
      var undo = el("button", { type: "button", className: "btn btn-sm btn-outline-primary", text: "Undo" });
      undo.addEventListener("click", function () {
        undo.disabled = true;
        options.undo();
        window.bootstrap.Toast.getOrCreateInstance(node).hide();
      });
      body.append(undo);
    }
    body.append(el("button", { type: "button", className: "btn-close", "data-bs-dismiss": "toast", "aria-label": "Close" }));
    container.append(node);
    node.addEventListener("hidden.bs.toast", function () { node.remove(); });
    /* An Undo offer stays 20 s (7 s went by before people found the button); Bootstrap's toast
       also pauses its countdown while the pointer is over it or it has the keyboard focus, and
       restarts it in full when they leave. */
    window.bootstrap.Toast.getOrCreateInstance(node, { delay: options.undo ? UNDO_TOAST_MS : 5000 }).show();
    return node;
  }

  window.LC = {
    config: config, api: api, el: el, badge: badge, badgeOf: badgeOf, toast: toast,
    formatDateTime: formatDateTime, formatTime: formatTime, localISODate: localISODate,
    localizeTimes: localizeTimes, timeZone: timeZone,
  };
  document.addEventListener("DOMContentLoaded", function () { localizeTimes(document); });
})();
