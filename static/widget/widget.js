/* leadchat widget page (inside the iframe). Plain JS, no dependencies, BotUI's model: message
   bubbles, a typing indicator, quick-reply buttons, a text input that becomes an email input with
   inline validation when the agent asks for an email. Every stored text is set with textContent:
   it is never parsed as HTML. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("lc-config").textContent);
  var qs = new URLSearchParams(location.search);
  var $ = function (id) { return document.getElementById(id); };
  var log = $("lc-log"), form = $("lc-form"), input = $("lc-input"), quick = $("lc-quick");
  var hint = $("lc-hint"), sendBtn = $("lc-send"), closeBtn = $("lc-close");
  var storeKey = "leadchat:" + cfg.siteKey;
  var embedded = qs.get("embed") === "1" && window.parent !== window;
  var parentOrigin = originOf(qs.get("page_url") || document.referrer);
  // Browsers that block third-party storage (Chrome incognito, strict tracking protection) deny
  // the iframe its localStorage; then the embed script keeps the ids in the page's own storage.
  var storage = (function () {
    try { var ls = window.localStorage; ls.setItem("lc-probe", "1"); ls.removeItem("lc-probe"); return ls; } catch (e) { return null; }
  })();
  var viaParent = !storage && embedded;
  var state = null, starting = null, busy = false, expects = "text", typing = null, gotState = null;
  // Live updates: ids already on screen, the poll cursor, whether the chat is showing (the
  // launcher asks for an unread badge when not), and a counter that voids a poll overtaken by a
  // message of the visitor's (its answer could repeat what the post's answer brings).
  var seen = {}, cursor = 0, showing = !embedded, unread = 0, pollTimer = null, sendRound = 0;
  // The visitor's line on screen while its post is in flight: a transcript that arrives
  // meanwhile (the conversation starting under load) must not wipe it.
  var pending = null;
  var pollMs = cfg.pollMs || 2000;
  // Whether an agent holds the session (from the poll), and when the last typing ping went.
  var held = false, typedAt = 0;
  var EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/;
  // The texts come from the server in the site's language (widget.views.widget_texts).
  var T = cfg.t;
  function fill(text, value) { return text.replace("%s", value); }
  // Times in the visitor's own clock, in the site's language's format ("14:05", "2:05 PM").
  var clock = new Intl.DateTimeFormat(cfg.lang, { hour: "numeric", minute: "2-digit" });
  var fullDate = new Intl.DateTimeFormat(cfg.lang, { dateStyle: "medium", timeStyle: "short" });

  document.documentElement.style.setProperty("--lc-accent", cfg.color);
  if (!embedded) closeBtn.hidden = true;

  function originOf(url) {
    try { return new URL(url).origin; } catch (e) { return null; }
  }
  function valid(s) {
    return s && typeof s.id === "string" && typeof s.token === "string" ? { id: s.id, token: s.token } : null;
  }
  function load() {
    try { return valid(JSON.parse(storage.getItem(storeKey))); } catch (e) { return null; }
  }
  function save(s) {
    state = s;
    if (viaParent) return toParent({ type: "leadchat:save", state: s });
    try { s ? storage.setItem(storeKey, JSON.stringify(s)) : storage.removeItem(storeKey); } catch (e) { /* full or denied */ }
  }
  function toParent(msg) {
    if (embedded && parentOrigin && cfg.origins.indexOf(parentOrigin) !== -1) window.parent.postMessage(msg, parentOrigin);
  }

  function api(method, url, body) {
    var headers = { Accept: "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    if (state) headers["X-Visitor-Token"] = state.token;
    return fetch(url, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined, credentials: "omit" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.ok) return data;
          var err = new Error(data.error || fill(T.failed, r.status));
          err.status = r.status;
          err.retryAfter = parseInt(r.headers.get("Retry-After"), 10) || 0;
          throw err;
        });
      }, function () {
        var err = new Error(T.offline);
        err.status = 0;
        throw err;
      });
  }

  function bubble(role, text, author, at) {
    var div = document.createElement("div");
    div.className = "lc-msg lc-" + role;
    if (author) {
      var who = document.createElement("span");
      who.className = "lc-author";
      who.textContent = author;
      div.appendChild(who);
      div.appendChild(document.createTextNode(text));
    } else {
      div.textContent = text;
    }
    log.appendChild(div);
    stamp(div, at);
    log.scrollTop = log.scrollHeight;
    return div;
  }
  // A message's time (stored by the server, `created_at`), small under its bubble (a sibling, so
  // the bubble holds only the message); screen readers hear "Sent at 14:05" after the message
  // and a hover shows the full date.
  function stamp(div, at) {
    var when = new Date(at);
    if (!at || isNaN(when)) return;
    var t = div.lcTime || document.createElement("time");
    t.className = "lc-time";
    t.dateTime = when.toISOString();
    t.textContent = clock.format(when);
    t.title = fullDate.format(when);
    t.setAttribute("aria-label", fill(T.sentAt, clock.format(when)));
    if (!div.lcTime) div.after(t);
    div.lcTime = t;
  }
  function showTyping(on) {
    if (on && !typing) {
      typing = document.createElement("div");
      typing.className = "lc-msg lc-agent lc-typing";
      typing.setAttribute("role", "status");
      typing.setAttribute("aria-label", T.typing);
      typing.innerHTML = "<i></i><i></i><i></i>"; // static markup, no data
      log.appendChild(typing);
      log.scrollTop = log.scrollHeight;
    } else if (!on && typing) {
      typing.remove();
      typing = null;
    }
  }
  var LOOK = { visitor: "visitor", system: "system", agent: "agent lc-human" };
  // Returns how many messages were new on screen.
  function render(messages, replace) {
    if (replace) { log.textContent = ""; seen = {}; }
    var fresh = messages.filter(function (m) { return !(m.id && seen[m.id]); });
    fresh.forEach(function (m) {
      if (m.id) { seen[m.id] = true; cursor = Math.max(cursor, m.id); }
      bubble(LOOK[m.role] || "agent", m.text, m.role === "agent" ? m.author : "", m.created_at);
    });
    if (replace && pending) log.appendChild(pending);
    if (replace && typing) log.appendChild(typing);
    var last = fresh[fresh.length - 1];
    if (last && last.role !== "visitor" && last.role !== "system") offer(last.quick_replies || [], last.expects);
    return fresh.length;
  }

  // Poll for what others wrote (an agent, a takeover line) while a conversation exists: one
  // cheap request every pollMs, slower while the tab is hidden, backing off on errors.
  function schedule(ms) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, ms);
  }
  function poll() {
    if (!state) return;
    if (busy) return schedule(pollMs); // the visitor's post brings its own answer
    var round = sendRound;
    api("GET", cfg.api + encodeURIComponent(state.id) + "/messages/?after=" + cursor).then(function (data) {
      if (round !== sendRound) return schedule(pollMs);
      var before = cursor;
      var others = (data.messages || []).filter(function (m) { return m.role !== "visitor"; });
      var added = render(data.messages || []);
      cursor = Math.max(before, data.cursor || 0);
      if (added && others.length && !showing) {
        unread += others.length;
        toParent({ type: "leadchat:unread", count: unread });
      }
      pollMs = data.poll_ms || pollMs;
      held = !!data.held;
      schedule(document.hidden ? pollMs * 4 : pollMs);
    }, function (err) {
      if (err.status === 403 || err.status === 404) return; // gone: the next open starts afresh
      schedule(err.status === 429 ? Math.max(1, err.retryAfter) * 1000 : Math.min(30000, pollMs * 5));
    });
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden && state) schedule(0); });
  function offer(replies, kind) {
    quick.textContent = "";
    replies.forEach(function (text) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "lc-chip";
      b.textContent = text;
      b.addEventListener("click", function () { send(text); });
      quick.appendChild(b);
    });
    expects = kind === "email" ? "email" : "text";
    input.type = expects;
    input.setAttribute("autocomplete", expects === "email" ? "email" : "off");
    input.placeholder = expects === "email" ? T.emailPlaceholder : T.placeholder;
    validate();
  }
  function validate() {
    var v = input.value.trim();
    var bad = expects === "email" && v.indexOf("@") !== -1 && !EMAIL.test(v);
    input.setAttribute("aria-invalid", String(bad));
    hint.textContent = bad ? T.emailHint : "";
  }
  function notice(text) {
    return bubble("notice", text);
  }

  // The greeting as the session would store it, shown before there is one: opening the chat
  // creates no session; the visitor's first message does (`create`).
  function greet() {
    render([{ role: "ai", text: cfg.greeting, quick_replies: cfg.quickReplies || [] }], true);
    greetEl = log.firstChild; // its time comes with the stored greeting (the first message)
  }
  var greetEl = null;
  // Counted once per page, for the overview's funnel, when a visitor without a conversation
  // opens the chat. A lost count is no reason to bother the visitor: errors are ignored.
  var openingSent = false;
  function opening() {
    if (openingSent || state) return;
    openingSent = true;
    api("POST", cfg.openings, { site_key: cfg.siteKey, page_url: qs.get("page_url") || location.href }).catch(function () {});
  }

  // Resumes the stored conversation if there is one; with `create`, starts one if not.
  function start(create) {
    if (starting) return starting;
    if (state) {
      starting = api("GET", cfg.api + encodeURIComponent(state.id) + "/").then(function (data) {
        render(data.messages, true);
        schedule(pollMs);
      }, function (err) {
        if (err.status === 403 || err.status === 404) {
          save(null); // the conversation is gone or no longer ours: start afresh
          starting = null;
          if (create) return start(true);
          return greet();
        }
        starting = null;
        throw err;
      });
      return starting;
    }
    if (!create) return Promise.resolve();
    starting = api("POST", cfg.api, {
      site_key: cfg.siteKey,
      page_url: qs.get("page_url") || document.referrer || "",
      referrer: qs.get("referrer") || "",
      utm_source: qs.get("utm_source") || "",
      utm_medium: qs.get("utm_medium") || "",
      utm_campaign: qs.get("utm_campaign") || ""
    }).then(function (data) {
      save({ id: data.session_id, token: data.visitor_token });
      // The greeting is on screen already (greet): only its stored id is news.
      data.messages.forEach(function (m) { if (m.id) { seen[m.id] = true; cursor = Math.max(cursor, m.id); } });
      if (greetEl && data.messages[0]) stamp(greetEl, data.messages[0].created_at);
      schedule(pollMs);
    }, function (err) {
      starting = null;
      throw err;
    });
    return starting;
  }

  // A 503 means the server is briefly away (a database restart) and stored nothing: the message
  // is sent again after Retry-After, a few times, while it stays on screen marked as waiting.
  // Only if every try fails does it go back into the input, so the visitor never loses it.
  var RETRIES = 5, MAX_WAIT_S = 30;
  function post(text, mine, attempt) {
    return start(true).then(function () {
      return state || start(true); // a resume that found the conversation gone started none
    }).then(function () {
      showTyping(true);
      return api("POST", cfg.api + encodeURIComponent(state.id) + "/messages/", { text: text });
    }).catch(function (err) {
      if (err.status !== 503 || attempt >= RETRIES) throw err;
      showTyping(false);
      var wait = Math.min(MAX_WAIT_S, Math.max(1, err.retryAfter || 5) * Math.pow(2, attempt));
      mine.classList.add("lc-waiting");
      var note = notice(fill(T.retry, wait));
      note.setAttribute("role", "status");
      return new Promise(function (resolve) { setTimeout(resolve, wait * 1000); }).then(function () {
        note.remove();
        return post(text, mine, attempt + 1);
      });
    });
  }

  function send(text) {
    text = text.trim();
    if (!text || busy) return;
    busy = true;
    sendRound += 1;
    sendBtn.disabled = true;
    quick.textContent = "";
    input.value = "";
    validate();
    var mine = pending = bubble("visitor", text);
    post(text, mine, 0).then(function (data) {
      mine.classList.remove("lc-waiting");
      showTyping(false);
      data.messages.forEach(function (m) {
        if (m.role === "visitor" && m.id) { seen[m.id] = true; cursor = Math.max(cursor, m.id); stamp(mine, m.created_at); }
      });
      render(data.messages.filter(function (m) { return m.role !== "visitor"; }));
    }).catch(function (err) {
      showTyping(false);
      mine.remove();
      if (!input.value) input.value = text; // not stored: give the text back
      notice(err.message);
    }).then(function () {
      pending = null;
      busy = false;
      sendBtn.disabled = false;
      input.focus();
    });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    send(input.value);
  });
  input.addEventListener("input", validate);
  // "Visitor is typing" on the page of the agent holding the session: at most one ping per 3 s
  // while typing, none while the AI answers (nobody watches live then).
  input.addEventListener("input", function () {
    if (!state || !held || !input.value || Date.now() - typedAt < 3000) return;
    typedAt = Date.now();
    api("POST", cfg.api + encodeURIComponent(state.id) + "/typing/").catch(function () { /* a hint */ });
  });
  closeBtn.addEventListener("click", function () { toParent({ type: "leadchat:close" }); });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") toParent({ type: "leadchat:close" });
  });
  function engage() {
    booted.then(function () { return state ? start(false) : opening(); }).catch(function (err) { notice(err.message); });
  }
  window.addEventListener("message", function (e) {
    if (e.source !== window.parent || cfg.origins.indexOf(e.origin) === -1 || !e.data) return;
    if (e.data.type === "leadchat:state" && gotState) gotState(valid(e.data.state));
    if (e.data.type === "leadchat:open") {
      showing = true;
      unread = 0;
      engage();
      input.focus();
    }
    if (e.data.type === "leadchat:hidden") showing = false;
  });

  var booted = new Promise(function (resolve) {
    if (!viaParent) return resolve(storage ? load() : null);
    gotState = resolve;
    setTimeout(function () { resolve(null); }, 2000);
  }).then(function (saved) {
    gotState = null;
    state = saved;
    if (state) return start(false).catch(function (err) { notice(err.message); });
    // Until the visitor writes, the greeting is shown without a session, so openings that never
    // become a conversation leave no empty session behind (they are counted: opening()).
    greet();
    if (!embedded) opening(); // the page on its own: the chat shows at once
  });
  // The greeting travels with `ready` for the launcher's optional bubble (embed.js).
  var ready = { type: "leadchat:ready", color: cfg.color, needsState: viaParent };
  if (cfg.bubbleAfter) ready.bubble = { text: cfg.greeting, after: cfg.bubbleAfter, close: T.dismiss };
  toParent(ready);
})();
