/* Sessions and trash pages: the table loads from the staff API; the changes feed is polled
   while the tab is visible, so new sessions and status changes appear without a reload. */
(function () {
  "use strict";
  var cfg = LC.config();
  var trash = !!cfg.trash;
  var canArchive = !!(cfg.can && cfg.can.archive);
  var FILTERS = ["q", "completion", "has_lead", "needs_human", "qa_status", "archive", "site",
    "channel", "date_from", "date_to", "ordering"];
  var INVERSE = { archive: "unarchive", unarchive: "archive", delete: "restore", restore: "delete" };
  var DONE = { archive: "archived", unarchive: "unarchived", delete: "moved to the trash", restore: "restored" };

  var form = document.getElementById("filters");
  var rows = document.getElementById("rows");
  var state = { page: 1, pageSize: 25, numPages: 1, count: 0 };
  var shown = new Map(); // session id -> updated_at of the row on screen
  var cursor = null;
  var timer = null;
  var inFlight = false;

  function field(name) { return form.elements.namedItem(name); }

  /* Values from the address that no control can hold (?qa_status=bogus, a mistyped date): they
     are sent to the API as they are, so its 400 names them on the page instead of the list
     silently dropping the filter and showing everything. Changing that control forgets it. */
  var unheld = {};

  function readUrl() {
    var params = new URLSearchParams(window.location.search);
    FILTERS.forEach(function (name) {
      var input = field(name);
      if (!input || !params.has(name)) return;
      var raw = params.get(name);
      input.value = raw;
      if (raw && input.value !== raw) unheld[name] = raw;
    });
    state.page = Math.max(1, parseInt(params.get("page"), 10) || 1);
  }

  function filterParams() {
    var params = new URLSearchParams();
    FILTERS.forEach(function (name) {
      var input = field(name);
      if (input && input.value) params.set(name, input.value);
      else if (unheld[name]) params.set(name, unheld[name]);
    });
    if (trash) params.set("trash", "true");
    var zone = LC.timeZone();
    if (zone) params.set("tz", zone);
    return params;
  }

  function writeUrl() {
    var params = filterParams();
    params.delete("trash");
    params.delete("tz");
    if (state.page > 1) params.set("page", String(state.page));
    var query = params.toString();
    window.history.replaceState(null, "", query ? "?" + query : window.location.pathname);
  }

  function sessionUrl(id) { return cfg.sessionUrl.replace("__id__", id); }
  function actionUrl(id, action) { return cfg.api.sessions + id + "/" + action + "/"; }

  function currentArchive() {
    var input = field("archive");
    return (input && input.value) || "active";
  }
  /* After an archive/trash move only those two fields changed, so the page can tell at once
     whether the row still belongs in this list. */
  function belongsHere(row) {
    if (trash) return !!row.deleted_at;
    if (row.deleted_at) return false;
    var archive = currentArchive();
    return archive === "all" || row.archive_status === archive;
  }

  function actionButton(row, action, label, icon, style) {
    var button = LC.el("button", {
      type: "button",
      className: "btn btn-sm btn-outline-" + style,
      dataset: { action: action, id: row.id },
      "aria-label": label + " session of " + (row.lead.name || "anonymous visitor"),
      title: label,
    }, [LC.el("i", { className: "fa-solid " + icon, "aria-hidden": "true" }),
      LC.el("span", { className: "d-none d-xl-inline ms-1", text: label })]);
    return button;
  }

  function rowElement(row) {
    var who = row.lead.name || "Anonymous visitor";
    var tr = LC.el("tr", { dataset: { id: row.id, updated: row.updated_at } });
    if (row.archive_status === "archived" && !trash) tr.classList.add("row-archived");
    if (canArchive) {
      tr.append(LC.el("td", { className: "check-col" }, [LC.el("input", {
        type: "checkbox", className: "form-check-input row-check", value: row.id,
        "aria-label": "Select session of " + who,
      })]));
    }
    tr.append(LC.el("td", { className: "text-md-nowrap small" }, [
      LC.el("time", { datetime: row.started_at, title: row.started_at, text: LC.formatDateTime(row.started_at) }),
    ]));
    tr.append(LC.el("td", {}, [
      LC.el("a", { href: sessionUrl(row.id), className: "fw-semibold session-link", text: who }),
      row.lead.email ? LC.el("div", { className: "small text-body-secondary text-break", text: row.lead.email }) : null,
    ]));
    var statuses = LC.el("td", { className: "status-cell" }, [LC.badge("completion", row.completion_status)]);
    if (row.needs_human) {
      tr.classList.add("row-needs-human");
      statuses.prepend(LC.badge("human", "requested", "human-badge"), " ");
    }
    if (row.channel && row.channel !== "web") statuses.append(" ", LC.badge("channel", row.channel));
    if (row.archive_status === "archived") statuses.append(" ", LC.badge("archive", "archived", "archive-badge"));
    if (row.qa_status !== "unchecked") statuses.append(" ", LC.badge("qa", row.qa_status));
    if (row.delivery_state !== "none") statuses.append(" ", LC.badge("delivery", row.delivery_state));
    var quality = row.lead.email_quality;
    if (quality && quality !== "valid") statuses.append(" ", LC.badge("email_quality", quality, "email-quality-badge"));
    if (row.channel !== "web") statuses.append(" ", LC.badge("channel", row.channel, "channel-badge"));
    if (row.error_count) {
      statuses.append(" ", LC.el("span", { className: "badge text-bg-danger", title: "Open automation errors" }, [
        LC.el("i", { className: "fa-solid fa-triangle-exclamation me-1", "aria-hidden": "true" }),
        row.error_count + (row.error_count === 1 ? " error" : " errors"),
      ]));
    }
    tr.append(statuses);
    tr.append(LC.el("td", { className: "d-none d-md-table-cell text-end", text: String(row.message_count) }));
    var page = row.page_url || "";
    var pageText = page;
    try { var parsed = new URL(page); pageText = parsed.host + parsed.pathname; } catch (e) { /* keep */ }
    tr.append(LC.el("td", { className: "d-none d-lg-table-cell small text-truncate page-cell", title: page, text: pageText || "—" }));
    tr.append(LC.el("td", { className: "d-none d-xl-table-cell small", text: row.site ? row.site.name : "—" }));
    var actions = LC.el("td", { className: "text-end text-nowrap" });
    if (canArchive) {
      var group = LC.el("div", { className: "btn-group" });
      if (trash) {
        group.append(actionButton(row, "restore", "Restore", "fa-rotate-left", "success"));
      } else {
        if (row.archive_status === "archived") group.append(actionButton(row, "unarchive", "Unarchive", "fa-box-open", "secondary"));
        else group.append(actionButton(row, "archive", "Archive", "fa-box-archive", "secondary"));
        group.append(actionButton(row, "delete", "Delete", "fa-trash-can", "danger"));
      }
      actions.append(group);
    }
    tr.append(actions);
    return tr;
  }

  function findRow(id) { return rows.querySelector('tr[data-id="' + CSS.escape(id) + '"]'); }

  function putRow(row, index) {
    var fresh = rowElement(row);
    var old = findRow(row.id);
    if (old) {
      var checked = old.querySelector(".row-check");
      if (checked && checked.checked) fresh.querySelector(".row-check").checked = true;
      old.replaceWith(fresh);
    } else {
      var before = rows.querySelectorAll("tr[data-id]")[index || 0] || null;
      rows.insertBefore(fresh, before);
      state.count += 1;
    }
    shown.set(row.id, row.updated_at);
    return fresh;
  }

  function dropRow(id) {
    var old = findRow(id);
    if (!old) return -1;
    var index = Array.prototype.indexOf.call(rows.querySelectorAll("tr[data-id]"), old);
    old.remove();
    shown.delete(id);
    state.count = Math.max(0, state.count - 1);
    return index;
  }

  function refreshChrome() {
    var present = rows.querySelectorAll("tr[data-id]").length;
    document.getElementById("count").textContent = String(state.count);
    document.getElementById("empty-filtered").classList.toggle("d-none", present > 0 || !!document.getElementById("empty-never"));
    var never = document.getElementById("empty-never");
    if (never) never.classList.toggle("d-none", present > 0);
    document.getElementById("page-info").textContent = state.count
      ? "Page " + state.page + " of " + state.numPages + " · " + state.count + " session" + (state.count === 1 ? "" : "s")
      : "";
    document.getElementById("prev-page").disabled = state.page <= 1;
    document.getElementById("next-page").disabled = state.page >= state.numPages;
    updateBulk();
  }

  function showError(message) {
    var box = document.getElementById("list-error");
    box.textContent = message || "";
    box.classList.toggle("d-none", !message);
  }

  async function load() {
    var params = filterParams();
    params.set("page", String(state.page));
    params.set("page_size", String(state.pageSize));
    var data;
    try {
      data = await LC.api(cfg.api.sessions + "?" + params.toString());
    } catch (error) {
      if (error.status === 400 && error.data && error.data.fields && error.data.fields.page && state.page > 1) {
        state.page = 1; // a page number the API refuses: go to the first
        writeUrl();
        return load();
      }
      rows.replaceChildren();
      showError(error.message);
      refreshChrome();
      return;
    }
    if (!data.results.length && state.page > 1 && state.page > data.num_pages) {
      state.page = Math.max(1, data.num_pages); // the page vanished (sessions archived meanwhile)
      writeUrl();
      return load();
    }
    showError("");
    state.count = data.count;
    state.numPages = data.num_pages;
    shown.clear();
    rows.replaceChildren.apply(rows, data.results.map(function (row) {
      shown.set(row.id, row.updated_at);
      return rowElement(row);
    }));
    document.getElementById("new-banner").classList.add("d-none");
    refreshChrome();
    rows.dataset.loaded = "true";
  }

  /* --- live updates ---------------------------------------------------------------------- */

  function newestStartShown() {
    var first = rows.querySelector("tr[data-id] time");
    return first ? first.getAttribute("datetime") : "";
  }
  function newestFirst() {
    var ordering = field("ordering");
    return state.page === 1 && (!ordering || !ordering.value || ordering.value === "-started_at");
  }

  async function poll() {
    // A filter the API refuses would fail every poll: the list's error says what is wrong.
    if (document.hidden || inFlight || Object.keys(unheld).length) return;
    inFlight = true;
    try {
      var params = filterParams();
      if (cursor) params.set("since", cursor);
      var data = await LC.api(cfg.api.changes + "?" + params.toString());
      var hadCursor = !!cursor;
      cursor = data.cursor;
      if (hadCursor) applyChanges(data.results);
      // The notifications (notify.js) read the same feed: one poller per page.
      document.dispatchEvent(new CustomEvent("leadchat:changes", { detail: { rows: data.results, first: !hadCursor, cursor: data.cursor } }));
      setLive(true);
      if (data.truncated) window.setTimeout(poll, 0);
    } catch (error) {
      setLive(false, error.message);
    } finally {
      inFlight = false;
    }
  }

  /* Waiting visitors sort first (the API's order): a row that starts or stops waiting, or a
     new waiting session, moves, so the page reloads instead of patching in place. */
  function waitingMoved(row) {
    var tr = findRow(row.id);
    var wasWaiting = !!(tr && tr.classList.contains("row-needs-human"));
    return !!row.matches && !!row.needs_human !== wasWaiting && (!!tr || !!row.needs_human);
  }

  function applyChanges(changed) {
    var touched = false;
    if (state.page === 1 && changed.some(function (row) {
      return shown.get(row.id) !== row.updated_at && waitingMoved(row);
    })) {
      load();
      return;
    }
    changed.forEach(function (row) {
      if (shown.get(row.id) === row.updated_at) return; // already on screen as is
      var present = !!findRow(row.id);
      if (present && row.matches) {
        putRow(row).classList.add("row-flash");
      } else if (present) {
        dropRow(row.id);
      } else if (row.matches) {
        if (newestFirst() && row.started_at >= newestStartShown()) {
          putRow(row, 0).classList.add("row-flash", "row-new");
        } else {
          document.getElementById("new-banner").classList.remove("d-none");
        }
      }
      touched = true;
    });
    if (touched) refreshChrome();
  }

  function setLive(ok, message) {
    var live = document.getElementById("live");
    var text = document.getElementById("live-text");
    live.classList.toggle("live-on", ok && !document.hidden);
    live.classList.toggle("live-off", !ok);
    text.textContent = !ok ? "Offline" : document.hidden ? "Paused" : "Live";
    live.title = message || "New sessions and changes appear by themselves";
  }

  function startPolling() {
    if (timer) window.clearInterval(timer);
    timer = window.setInterval(poll, cfg.pollMs || 3000);
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) setLive(true);
    else poll(); // catch up at once when the tab comes back
  });

  /* --- actions ---------------------------------------------------------------------------- */

  async function act(id, action, withUndo) {
    var tr = findRow(id);
    if (tr) tr.classList.add("opacity-50");
    var row;
    try {
      row = await LC.api(actionUrl(id, action), { method: "POST" });
    } catch (error) {
      if (tr) tr.classList.remove("opacity-50");
      LC.toast(error.message, { error: true });
      return;
    }
    var index = belongsHere(row) ? null : dropRow(id);
    if (index === null) putRow(row);
    refreshChrome();
    if (withUndo) {
      var who = row.lead.name || "Anonymous visitor";
      LC.toast("Session of " + who + " " + DONE[action] + ".", {
        undo: function () { undoAction(id, INVERSE[action], index); },
      });
    }
  }

  async function undoAction(id, action, index) {
    try {
      var row = await LC.api(actionUrl(id, action), { method: "POST" });
      if (belongsHere(row)) putRow(row, index > 0 ? index : 0);
      else dropRow(id);
      refreshChrome();
    } catch (error) {
      LC.toast(error.message, { error: true });
    }
  }

  async function bulk(action, ids, withUndo) {
    if (!ids.length) return;
    var data;
    try {
      data = await LC.api(cfg.api.bulk, { method: "POST", body: { action: action, ids: ids } });
    } catch (error) {
      LC.toast(error.message, { error: true });
      return;
    }
    var moved = [];
    var dropped = 0;
    data.results.forEach(function (result) {
      if (!result.session) return;
      if (result.ok) moved.push(result.id);
      if (belongsHere(result.session)) {
        if (findRow(result.id) || !withUndo) putRow(result.session);
      } else if (dropRow(result.id) >= 0) {
        dropped += 1;
      }
    });
    refreshChrome();
    /* Rows that left the list leave a short (or, after a full page, an empty) page while more
       sessions match: load the page again, so the table never says "No sessions match" under a
       count of 201. */
    if (dropped) await load();
    var failed = data.results.length - moved.length;
    var message = moved.length + " session" + (moved.length === 1 ? "" : "s") + " " + DONE[action] + "." +
      (failed ? " " + failed + " could not be changed." : "");
    LC.toast(message, withUndo && moved.length ? { undo: function () { bulk(INVERSE[action], moved, false).then(load); } } : {});
  }

  function selectedIds() {
    return Array.prototype.map.call(rows.querySelectorAll(".row-check:checked"), function (box) { return box.value; });
  }
  function updateBulk() {
    if (!canArchive) return;
    var ids = selectedIds();
    document.getElementById("selected-count").textContent = ids.length + " selected";
    document.querySelectorAll("[data-bulk]").forEach(function (button) { button.disabled = !ids.length; });
    var all = document.getElementById("select-all");
    var boxes = rows.querySelectorAll(".row-check");
    all.checked = boxes.length > 0 && ids.length === boxes.length;
    all.indeterminate = ids.length > 0 && ids.length < boxes.length;
  }

  rows.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (button) {
      button.disabled = true;
      act(button.dataset.id, button.dataset.action, true);
    }
  });
  rows.addEventListener("change", function (event) {
    if (event.target.classList.contains("row-check")) updateBulk();
  });
  if (canArchive) {
    document.getElementById("select-all").addEventListener("change", function (event) {
      rows.querySelectorAll(".row-check").forEach(function (box) { box.checked = event.target.checked; });
      updateBulk();
    });
    document.querySelectorAll("[data-bulk]").forEach(function (button) {
      button.addEventListener("click", function () { bulk(button.dataset.bulk, selectedIds(), true); });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    state.page = 1;
    writeUrl();
    load();
  });
  form.addEventListener("reset", function () {
    unheld = {};
    window.setTimeout(function () { state.page = 1; writeUrl(); load(); }, 0);
  });
  form.addEventListener("change", function (event) {
    if (event.target.name) delete unheld[event.target.name];
    if (event.target.tagName === "SELECT" || event.target.type === "date") form.requestSubmit();
  });
  var emptyClear = document.getElementById("empty-clear");
  if (emptyClear) emptyClear.addEventListener("click", function () { form.reset(); });
  document.getElementById("prev-page").addEventListener("click", function () {
    if (state.page > 1) { state.page -= 1; writeUrl(); load(); }
  });
  document.getElementById("next-page").addEventListener("click", function () {
    if (state.page < state.numPages) { state.page += 1; writeUrl(); load(); }
  });
  document.getElementById("new-banner-show").addEventListener("click", function () {
    state.page = 1;
    var ordering = field("ordering");
    if (ordering) ordering.value = "-started_at";
    writeUrl();
    load();
  });
  document.querySelectorAll("[data-export]").forEach(function (link) {
    link.addEventListener("click", function () {
      var params = filterParams();
      if (link.dataset.transcript) params.set("transcript", "true");
      var base = link.dataset.export === "csv" ? cfg.api.exportCsv : cfg.api.exportJsonl;
      link.href = base + "?" + params.toString();
    });
  });

  readUrl();
  // The cursor is taken before the list loads; its overlap window covers the load itself.
  poll().then(load).then(startPolling);
})();
