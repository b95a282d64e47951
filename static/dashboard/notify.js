/* Dashboard notifications: a new lead, a visitor asking for a person, a visitor writing in a
   session this agent holds.

   Driven by the staff API's changes feed. The sessions and trash pages already poll it while
   visible and hand each answer over as a "leadchat:changes" event; elsewhere, and while the tab
   is hidden (when a notification matters most), this script polls it itself and sends the same
   event (the overview's KPIs listen to it).

   What it does with an event: the unread count in the tab title ("(2) Sessions · leadchat"),
   a browser notification once the user allowed them (asked only from the bell button, never on
   load), and a short beep if the user switched the sound on (WebAudio, no file, no CDN).
   The count clears when the user comes back to the tab or clicks it.

   Event kinds are the table KINDS: each names when a row last did the thing (an ISO time, or
   null); a row whose time is after this tab started watching, and not seen before, is an event.
   Stored text only ever reaches the page through textContent. */
(function () {
  "use strict";
  var cfg = LC.config();
  if (!cfg.api || !cfg.api.changes) return;

  var KINDS = [
    {
      name: "human",
      title: "A visitor asks for a person",
      at: function (row) { return row.needs_human ? row.human_requested_at : null; },
    },
    {
      name: "lead",
      title: "New lead",
      at: function (row) { return row.lead && row.lead.captured_at; },
    },
    {
      // A visitor writes in a session this agent took over (the changes feed names the holder
      // and when the visitor last wrote).
      name: "message",
      title: "New message from a visitor",
      at: function (row) { return row.held_by && row.held_by === cfg.user ? row.visitor_wrote_at : null; },
    },
  ];

  var STORE = "leadchat:notify";
  var SOUND = "leadchat:notify-sound";
  var FEED_PAGES = ["sessions", "trash"]; // pages whose own script polls the feed while visible
  var baseTitle = document.title;
  var state = load();
  var cursor = null;
  var inFlight = false;

  function load() {
    try {
      var saved = JSON.parse(window.sessionStorage.getItem(STORE) || "null");
      if (saved && typeof saved.since === "number") return saved;
    } catch (e) { /* a fresh start */ }
    return { since: null, unread: 0, seen: [] };
  }
  function save() {
    state.seen = state.seen.slice(-200);
    try { window.sessionStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }

  /* The feed's first cursor is the server's clock (minus its overlap window): events are timed
     by the server, so a client clock that is off does not matter. */
  function startFrom(firstCursor) {
    if (state.since !== null) return;
    var micros = Number(String(firstCursor).split("-")[0]);
    state.since = micros / 1000 + 15000;
    save();
  }

  function render() {
    document.title = (state.unread ? "(" + state.unread + ") " : "") + baseTitle;
    var badge = document.getElementById("notify-unread");
    if (badge) {
      badge.textContent = state.unread ? String(state.unread) : "";
      badge.setAttribute("aria-label", state.unread + " unread: mark read");
      badge.classList.toggle("d-none", !state.unread);
    }
  }

  function clearUnread() {
    if (!state.unread) return;
    state.unread = 0;
    save();
    render();
  }

  function sessionUrl(row) { return cfg.sessionUrl.replace("__id__", row.id); }

  /* One audio context per page, made (or resumed) on the user's first click or key: browsers
     keep audio silent on a page the user has not interacted with. */
  var audio = null;
  function wakeAudio() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    try {
      if (!audio) audio = new Context();
      if (audio.state === "suspended") audio.resume();
    } catch (e) { audio = null; }
    return audio;
  }
  ["pointerdown", "keydown"].forEach(function (name) {
    document.addEventListener(name, function () {
      if (window.localStorage.getItem(SOUND) === "on") wakeAudio();
    }, { once: true, capture: true });
  });

  function beep() {
    if (window.localStorage.getItem(SOUND) !== "on") return;
    var context = wakeAudio();
    if (!context) return;
    try {
      var tone = context.createOscillator();
      var gain = context.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, context.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, context.currentTime + 0.3);
      tone.connect(gain).connect(context.destination);
      tone.start();
      tone.stop(context.currentTime + 0.3);
    } catch (e) { /* no sound, no harm */ }
  }

  function announce(kind, row) {
    state.unread += 1;
    document.dispatchEvent(new CustomEvent("leadchat:notification", { detail: { kind: kind.name, row: row } }));
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    var who = (row.lead && (row.lead.name || row.lead.email)) || "Anonymous visitor";
    var site = row.site ? " · " + row.site.name : "";
    try {
      var shown = new Notification(kind.title, { body: who + site, tag: kind.name + ":" + row.id });
      shown.onclick = function () { window.focus(); window.location.href = sessionUrl(row); };
    } catch (e) { /* some browsers only notify from a service worker */ }
  }

  function take(rows) {
    if (state.since === null) return;
    var any = false;
    rows.forEach(function (row) {
      KINDS.forEach(function (kind) {
        var at = kind.at(row);
        if (!at || Date.parse(at) < state.since) return;
        var key = kind.name + ":" + row.id + ":" + at;
        if (state.seen.indexOf(key) !== -1) return;
        state.seen.push(key);
        announce(kind, row);
        any = true;
      });
    });
    if (any) {
      save();
      render();
      beep();
    }
  }

  /* --- the feed ---------------------------------------------------------------------------- */

  function pagePolls() { return FEED_PAGES.indexOf(cfg.page) !== -1 && !document.hidden; }

  async function poll() {
    if (inFlight || pagePolls()) return;
    inFlight = true;
    try {
      var url = cfg.api.changes + (cursor ? "?since=" + encodeURIComponent(cursor) : "");
      var data = await LC.api(url);
      var first = !cursor;
      cursor = data.cursor;
      document.dispatchEvent(new CustomEvent("leadchat:changes", { detail: { rows: data.results, first: first, cursor: data.cursor } }));
      if (data.truncated) window.setTimeout(poll, 0);
    } catch (error) {
      /* offline for now: the next poll catches up (the feed re-sends what changed) */
    } finally {
      inFlight = false;
    }
  }

  document.addEventListener("leadchat:changes", function (event) {
    if (event.detail.first) {
      // A first answer has no rows, only a cursor: the server's "now" to count events from.
      if (event.detail.cursor) startFrom(event.detail.cursor);
      return;
    }
    take(event.detail.rows || []);
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) clearUnread();
    poll();
  });

  /* --- the controls in the navigation bar ---------------------------------------------------- */

  function permissionButton() {
    var button = document.getElementById("notify-permission");
    if (!button) return;
    var label = document.getElementById("notify-permission-text");
    function show() {
      var supported = "Notification" in window;
      var permission = supported ? Notification.permission : "unsupported";
      var text = {
        "default": "Enable notifications",
        granted: "Notifications on",
        denied: "Notifications blocked",
        unsupported: "No notifications in this browser",
      }[permission];
      label.textContent = text;
      button.title = permission === "denied"
        ? "The browser blocks notifications for this site; allow them in its site settings."
        : text;
      button.disabled = permission !== "default";
      button.setAttribute("aria-pressed", String(permission === "granted"));
    }
    button.addEventListener("click", function () {
      clearUnread();
      if (!("Notification" in window) || Notification.permission !== "default") return;
      // Only here, on the user's click: browsers refuse (and users resent) a prompt on load.
      Promise.resolve(Notification.requestPermission()).then(show, show);
    });
    show();
  }

  function soundButton() {
    var button = document.getElementById("notify-sound");
    if (!button) return;
    function show() {
      var on = window.localStorage.getItem(SOUND) === "on";
      button.setAttribute("aria-pressed", String(on));
      button.title = on ? "Sound on: click to mute" : "Sound off: click to beep on new events";
      button.querySelector(".fa-volume-high").classList.toggle("d-none", !on);
      button.querySelector(".fa-volume-xmark").classList.toggle("d-none", on);
    }
    button.addEventListener("click", function () {
      var on = window.localStorage.getItem(SOUND) === "on";
      window.localStorage.setItem(SOUND, on ? "off" : "on");
      show();
      if (!on) beep(); // let the user hear what they chose
    });
    show();
  }

  var unread = document.getElementById("notify-unread");
  if (unread) unread.addEventListener("click", clearUnread);
  permissionButton();
  soundButton();
  render();
  poll();
  window.setInterval(poll, cfg.pollMs || 3000);
  LC.notify = { kinds: KINDS, take: take, clearUnread: clearUnread };
})();
