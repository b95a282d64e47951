/* Session page, live: new messages appear within seconds (a poll of the staff API's
   /messages/?after= cursor), Take over / Hand back, and the holder's composer.
   Stored text only ever goes in with textContent (LC.el's "text"), never innerHTML. */
(function () {
  "use strict";
  var cfg = LC.config();
  var live = cfg.live;
  if (!live || !cfg.session) return;
  var base = cfg.api.sessions + cfg.session.id + "/";
  var transcript = document.getElementById("transcript");
  var countNode = document.getElementById("message-count");
  var stateNode = document.getElementById("takeover-state");
  var takeBtn = document.getElementById("takeover-button");
  var backBtn = document.getElementById("handback-button");
  var composer = document.getElementById("composer");
  var textBox = document.getElementById("composer-text");
  var sendBtn = document.getElementById("composer-send");
  var note = document.getElementById("composer-note");
  var cursor = live.cursor || 0, pollMs = live.pollMs || 2000, timer = null;
  var held = { by: live.heldBy, name: live.heldBy, blocked: null };
  var ROLES = { visitor: "Visitor", ai: "AI agent", agent: "Human agent", system: "System" };

  function renderState(state) {
    held = { by: state.held_by, name: state.held_by_name || state.held_by, blocked: state.reply_blocked };
    var mine = held.by && held.by === live.me;
    stateNode.textContent = "";
    if (held.by) {
      stateNode.append(LC.el("i", { className: "fa-solid fa-headset me-1", "aria-hidden": "true" }));
      stateNode.append(mine ? "You hold this session: the AI does not answer; write below." :
        held.name + " (" + held.by + ") holds this session: the AI does not answer.");
      if (state.visitor_typing) {
        stateNode.append(LC.el("span", { id: "visitor-typing", className: "ms-2 fst-italic", text: "Visitor is typing…" }));
      }
    } else {
      stateNode.append(LC.el("i", { className: "fa-solid fa-robot me-1", "aria-hidden": "true" }));
      stateNode.append("The AI answers this session.");
    }
    if (takeBtn) takeBtn.classList.toggle("d-none", !!held.by || cfg.session.deleted || !!live.unsupported);
    if (backBtn) backBtn.classList.toggle("d-none", !held.by || !(mine || live.isAdmin));
    if (composer) {
      composer.classList.toggle("d-none", !mine);
      note.textContent = mine && held.blocked ? held.blocked : "";
      sendBtn.disabled = !!(mine && held.blocked);
    }
  }

  function appendMessage(m) {
    if (transcript.querySelector('[data-message-id="' + m.id + '"]')) return false;
    var empty = document.getElementById("transcript-empty");
    if (empty) empty.remove();
    var who = (ROLES[m.role] || m.role) + (m.role === "agent" && m.sent_by ? " (" + m.sent_by + ")" : "");
    var meta = LC.el("div", { className: "msg-meta small text-body-secondary" }, [
      who + " · ",
      LC.el("time", { datetime: m.created_at, "data-format": "time", text: LC.formatTime(m.created_at) }),
    ]);
    var md = m.metadata || {};
    if (md.latency_ms !== undefined && md.latency_ms !== null) meta.append(" · " + md.latency_ms + " ms");
    if (md.backend) meta.append(" · " + md.backend);
    var node = LC.el("div", { className: "msg msg-" + m.role, dataset: { messageId: String(m.id) } }, [
      meta, LC.el("div", { className: "msg-bubble msg-live", text: m.text }),
    ]);
    var atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
    transcript.append(node);
    if (atBottom) transcript.scrollTop = transcript.scrollHeight;
    if (countNode) countNode.textContent = String(transcript.querySelectorAll(".msg").length);
    return true;
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }
  async function poll() {
    try {
      var data = await LC.api(base + "messages/?after=" + cursor);
      (data.messages || []).forEach(appendMessage);
      cursor = Math.max(cursor, data.cursor || 0);
      pollMs = data.poll_ms || pollMs;
      renderState(data);
      schedule(document.hidden ? pollMs * 4 : pollMs);
    } catch (error) {
      if (error.status === 401 || error.status === 403 || error.status === 404) return;
      schedule(Math.min(30000, pollMs * 5));
    }
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) schedule(0); });

  async function move(name, button) {
    button.disabled = true;
    try {
      renderState(await LC.api(base + name + "/", { method: "POST" }));
      document.dispatchEvent(new CustomEvent("lc:history-changed")); // detail.js reloads the panel
      LC.toast(name === "takeover" ? "You took the session over: the AI is paused." : "Handed back: the AI answers again.");
      if (name === "takeover" && textBox) textBox.focus();
      schedule(0);
    } catch (error) {
      LC.toast(error.message, { error: true });
      schedule(0);
    } finally {
      button.disabled = false;
    }
  }
  if (takeBtn) takeBtn.addEventListener("click", function () { move("takeover", takeBtn); });
  if (backBtn) backBtn.addEventListener("click", function () { move("handback", backBtn); });

  if (composer) {
    composer.addEventListener("submit", async function (event) {
      event.preventDefault();
      var text = textBox.value;
      if (!text.trim()) {
        note.textContent = "The message is empty.";
        return;
      }
      sendBtn.disabled = true;
      try {
        var data = await LC.api(base + "messages/", { method: "POST", body: { text: text } });
        textBox.value = "";
        note.textContent = "";
        appendMessage(data.message);
        renderState(data);
      } catch (error) {
        note.textContent = error.message; // kept in the box: nothing was stored
        if (error.data && error.status === 409) schedule(0);
      } finally {
        sendBtn.disabled = !!held.blocked;
        textBox.focus();
      }
    });
    textBox.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
  }

  schedule(pollMs);
})();
