/* Session detail: archive / unarchive / delete / restore with an undo toast; resolve errors. */
(function () {
  "use strict";
  var cfg = LC.config();
  var session = cfg.session;
  var INVERSE = { archive: "unarchive", unarchive: "archive", delete: "restore", restore: "delete" };
  var DONE = { archive: "Session archived.", unarchive: "Session unarchived.", delete: "Session moved to the trash.", restore: "Session restored." };

  function render(row) {
    var deleted = !!row.deleted_at;
    var archived = row.archive_status === "archived";
    var show = {
      archive: !deleted && !archived, unarchive: !deleted && archived,
      delete: !deleted, restore: deleted,
    };
    document.querySelectorAll("#session-actions [data-action]").forEach(function (button) {
      button.classList.toggle("d-none", !show[button.dataset.action]);
      button.disabled = false;
    });
    var badge = document.getElementById("archive-badge");
    if (badge) {
      var look = LC.badgeOf("archive", row.archive_status);
      badge.textContent = look.label;
      badge.className = "badge text-bg-" + look.style;
    }
    var note = document.getElementById("trash-note");
    if (note) note.classList.toggle("d-none", !deleted);
  }

  // The History panel is rendered by the server (QA and lifecycle entries, escaped there): after
  // a move, take the fresh panel from this page's own HTML rather than building entries here.
  async function refreshHistory() {
    var panel = document.querySelector('[data-panel="history"]');
    if (!panel) return;
    try {
      var response = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) return;
      var page = new DOMParser().parseFromString(await response.text(), "text/html");
      var fresh = page.querySelector('[data-panel="history"]');
      if (fresh) panel.replaceWith(document.importNode(fresh, true));
    } catch (error) {
      // The move itself succeeded; a stale history panel is put right by the next reload.
    }
  }

  // Other scripts of the page (takeover.js) make moves too: they say so with this event.
  document.addEventListener("lc:history-changed", refreshHistory);

  async function act(action, withUndo) {
    try {
      var row = await LC.api(cfg.api.sessions + session.id + "/" + action + "/", { method: "POST" });
      render(row);
      refreshHistory();
      LC.toast(DONE[action], withUndo ? { undo: function () { act(INVERSE[action], false); } } : {});
    } catch (error) {
      LC.toast(error.message, { error: true });
      document.querySelectorAll("#session-actions [data-action]").forEach(function (b) { b.disabled = false; });
    }
  }

  document.querySelectorAll("#session-actions [data-action]").forEach(function (button) {
    button.addEventListener("click", function () {
      button.disabled = true;
      act(button.dataset.action, true);
    });
  });

  var dismiss = document.querySelector("button[data-dismiss-human]");
  if (dismiss) {
    dismiss.addEventListener("click", async function () {
      dismiss.disabled = true;
      try {
        await LC.api(cfg.api.sessions + session.id + "/human-request/dismiss/", { method: "POST" });
        var entry = dismiss.closest("[data-needs-human]");
        if (entry && entry.previousElementSibling) entry.previousElementSibling.remove();
        if (entry) entry.remove();
        refreshHistory();
        LC.toast("Request for a person dismissed.");
      } catch (error) {
        dismiss.disabled = false;
        LC.toast(error.message, { error: true });
      }
    });
  }

  document.addEventListener("click", async function (event) {
    var button = event.target.closest("button[data-resolve]");
    if (!button) return;
    button.disabled = true;
    try {
      await LC.api(cfg.api.errors + button.dataset.resolve + "/resolve/", { method: "POST" });
      button.replaceWith(LC.el("span", { className: "badge text-bg-success", text: "Resolved" }));
    } catch (error) {
      button.disabled = false;
      LC.toast(error.message, { error: true });
    }
  });
})();
