/* leadchat embed: <script src="https://HOST/widget/embed.js" data-site="KEY" async></script>
   Asks first (key, site on, origin; the answer has the launcher's texts L): if refused, no
   launcher, one console.warn. No globals; a shadow root (:host's !important reset wins). */
(function () {
  "use strict";
  var d = document, w = window, t0 = Date.now(), L;
  var s = d.currentScript || d.querySelector('script[src*="/widget/embed.js"][data-site]');
  var key = s && s.getAttribute("data-site");
  if (!key || s.getAttribute("data-leadchat-loaded")) return;
  s.setAttribute("data-leadchat-loaded", "1");
  var base = new URL(s.src, location.href).origin;
  var color = s.getAttribute("data-color") || "#1f2937", storeKey = "leadchat:" + key;
  var css =
    ":host{all:initial!important}" +
    ".l{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border:0;border-radius:50%;" +
    "background:var(--c);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center}" +
    ".l:focus-visible{outline:3px solid #fff;box-shadow:0 0 0 6px var(--c)}" +
    ".l svg{width:26px;height:26px;fill:currentColor}" +
    ".p{position:fixed;right:20px;bottom:88px;z-index:2147483000;width:370px;height:min(600px,calc(100vh - 110px));" +
    "border-radius:14px;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.25);background:#fff}" +
    ".p[hidden]{display:none}.p iframe{border:0;width:100%;height:100%;display:block}" +
    // The unread badge: messages (an agent's reply) that came while the chat was closed.
    ".b{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 5px;box-sizing:border-box;border-radius:10px;" +
    "background:#dc2626;color:#fff;font:600 12px/20px system-ui,sans-serif;text-align:center}.b[hidden]{display:none}" +
    ".g{position:fixed;right:20px;bottom:88px;z-index:2147483000;max-width:260px;padding:10px;border-radius:12px;background:#fff;color:#222;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.25);font:14px system-ui,sans-serif}.g button{all:unset;cursor:pointer}.g .x{margin-left:8px}" +
    "@media (max-width:480px){.p{inset:0;width:auto;height:auto;border-radius:0}.o .l{display:none}}";
  var host = d.createElement("leadchat-widget");
  host.setAttribute("data-leadchat", "");
  var root = host.attachShadow({ mode: "open" });
  var wrap = d.createElement("div");
  wrap.style.setProperty("--c", color);
  wrap.innerHTML =
    '<div class="p" hidden></div><button class="l" type="button" aria-expanded="false">' +
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z"/></svg>' +
    '<span class="b" hidden aria-hidden="true"></span></button>' +
    '<div class="g" role="status" hidden><button type="button"></button><button type="button" class="x">&times;</button></div>';
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet]; // not subject to the host page's style-src CSP
  } catch (e) {
    var st = d.createElement("style");
    st.textContent = css;
    root.appendChild(st);
  }
  root.appendChild(wrap);
  var btn = wrap.querySelector(".l"), panel = wrap.querySelector(".p"), frame = null, ready = false, isOpen = false;
  var badge = wrap.querySelector(".b"), unread = 0;

  function paint(c) {
    if (/^#[0-9a-f]{6}$/i.test(c || "")) wrap.style.setProperty("--c", c);
  }
  function showUnread(count) {
    unread = count > 0 ? Math.min(count, 99) : 0;
    badge.hidden = !unread;
    badge.textContent = unread > 9 ? "9+" : String(unread); // a number we computed: text only
    if (!isOpen) btn.setAttribute("aria-label", unread ? L.unread.replace("%(count)s", unread) : L.open);
  }

  function src() {
    var q = new URLSearchParams(), p = new URLSearchParams(location.search);
    q.set("embed", "1");
    q.set("page_url", location.href.slice(0, 2000));
    if (d.referrer) q.set("referrer", d.referrer.slice(0, 2000));
    ["utm_source", "utm_medium", "utm_campaign"].forEach(function (k) {
      if (p.get(k)) q.set(k, p.get(k).slice(0, 200));
    });
    return base + "/widget/" + encodeURIComponent(key) + "/?" + q;
  }
  function load() {
    if (frame) return;
    frame = d.createElement("iframe");
    frame.title = L.frame;
    frame.src = src();
    panel.appendChild(frame);
  }
  function tell(type) {
    if (frame && ready) frame.contentWindow.postMessage({ type: "leadchat:" + type }, base);
  }
  function toggle(show) {
    isOpen = show;
    load();
    panel.hidden = !show;
    wrap.className = show ? "o" : "";
    btn.setAttribute("aria-expanded", String(show));
    btn.setAttribute("aria-label", show ? L.close : L.open);
    if (show) {
      unbubble();
      showUnread(0);
      tell("open");
    } else {
      tell("hidden");
      btn.focus();
    }
  }
  btn.addEventListener("click", function () { toggle(!isOpen); });
  w.addEventListener("message", function (e) {
    if (!frame || e.source !== frame.contentWindow || e.origin !== base || !e.data) return;
    var t = e.data.type;
    if (t === "leadchat:ready") {
      ready = true;
      paint(e.data.color);
      if (e.data.needsState) {
        var saved = null;
        try { saved = JSON.parse(localStorage.getItem(storeKey)); } catch (x) { /* none */ }
        frame.contentWindow.postMessage({ type: "leadchat:state", state: saved }, base);
      }
      if (isOpen) tell("open");
      if (e.data.bubble) bubble(e.data.bubble);
    } else if (t === "leadchat:save") {
      // The iframe may not keep storage of its own (third-party storage blocked): keep its ids.
      try {
        if (e.data.state) localStorage.setItem(storeKey, JSON.stringify(e.data.state));
        else localStorage.removeItem(storeKey);
      } catch (x) { /* storage full or denied */ }
    } else if (t === "leadchat:close") toggle(false);
    else if (t === "leadchat:unread" && !isOpen) showUnread(parseInt(e.data.count, 10) || 0);
  });
  // Greeting bubble (issue 16): `after` s into the page until dismissed or the chat opens,
  // which end it for the browser session.
  var bub = wrap.querySelector(".g"), bk = "leadchat:b:" + key, gone = 0;
  function unbubble() {
    gone = bub.hidden = 1;
    try { sessionStorage.setItem(bk, 1); } catch (x) { /* denied */ }
  }
  function bubble(b) {
    try { if (sessionStorage.getItem(bk)) return; } catch (x) { return; }
    bub.firstChild.textContent = b.text; // the site's greeting: text only
    bub.lastChild.setAttribute("aria-label", b.close);
    bub.firstChild.onclick = function () { toggle(true); };
    bub.lastChild.onclick = unbubble;
    setTimeout(function () { bub.hidden = gone; }, b.after * 1000 - (Date.now() - t0));
  }
  function idle() {
    (w.requestIdleCallback || function (f) { setTimeout(f, 1500); })(load, { timeout: 4000 });
  }
  fetch(base + "/api/widget/sites/" + encodeURIComponent(key) + "/", { credentials: "omit" }).then(function (r) {
    return r.json().then(function (j) { if (!r.ok) throw j; paint(j.color); L = j.labels; showUnread(0); });
  }).then(function () {
    return d.body || new Promise(function (r) { d.addEventListener("DOMContentLoaded", r); });
  }).then(function () {
    d.body.appendChild(host);
    if (d.readyState === "complete") idle();
    else w.addEventListener("load", idle);
  }, function (e) {
    console.warn("leadchat: " + ((e && e.error) || "no answer from " + base + "; check the address in the embed code"));
  });
})();
