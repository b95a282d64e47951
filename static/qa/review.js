/* The QA console's review page: the claim's heartbeat and the keyboard shortcuts.
   Plain script, no dependencies. Text from the server is set with textContent, never as HTML. */
(function () {
  "use strict";
  // Loaded without `defer`, from the head: the key listener is on before the page is parsed,
  // so a key pressed the moment the page appears (j then k at once) is kept and acted on once
  // the page is ready, instead of being lost to a document that has no listener yet.
  var ready = false;
  var early = [];
  var claim = null;

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // Renew the claim while the page is open: it runs out CLAIM_DURATION after the last renewal,
  // so a closed tab frees the session within minutes without anyone releasing it.
  function startHeartbeat() {
    var url = claim.getAttribute("data-claim-url");
    var seconds = parseInt(claim.getAttribute("data-heartbeat-seconds"), 10) || 120;
    if (url) {
      window.setInterval(function () {
        fetch(url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
        })
          .then(function (response) {
            return response.json().then(function (body) {
              return { ok: response.ok, body: body };
            });
          })
          .then(function (result) {
            if (result.ok) {
              var until = claim.querySelector(".qa-claim__until");
              if (until) until.textContent = result.body.until_clock;
            } else if (result.body && result.body.message) {
              claim.classList.add("qa-claim--other");
              claim.textContent = result.body.message;
            }
          })
          .catch(function () {
            /* Offline for a moment: the next beat tries again; the claim outlasts two misses. */
          });
      }, seconds * 1000);
    }
  }

  // Shortcuts: p pass & next, f flag issue, j next, k previous, n the QA note, Esc leaves a
  // field. Never while typing in a field, never with a modifier (the browser's own keys).
  function isField(element) {
    if (!element) return false;
    var tag = element.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || element.isContentEditable;
  }
  var KEYS = { p: true, f: true, j: true, k: true };
  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (!ready) {
      // The page is still loading: keep the shortcut for when it is ready (one at most: the
      // first one pressed is the one acted on).
      if (KEYS[event.key] || event.key === "n") {
        event.preventDefault();
        if (!early.length) early.push(event.key);
      }
      return;
    }
    if (event.key === "Escape") {
      if (isField(document.activeElement)) document.activeElement.blur();
      return;
    }
    if (isField(event.target) || isField(document.activeElement)) return;
    if (shortcut(event.key)) event.preventDefault();
  }
  // Acts on `key`; true when it was a shortcut of this page.
  function shortcut(key) {
    if (!claim) return false; // not a review page
    var note = document.querySelector("textarea[name=qa_notes]");
    if (key === "n") {
      if (!note) return false;
      note.focus();
      return true;
    }
    if (!KEYS[key]) return false;
    var target = document.querySelector('[data-qa-key="' + key + '"]');
    if (!target) return false;
    if (key === "f" && note && !note.value.trim()) {
      // An issue needs a note saying what is wrong: start it instead of a refused submit.
      note.focus();
      return true;
    }
    target.click();
    return true;
  }
  document.addEventListener("keydown", onKey);

  function start() {
    ready = true;
    claim = document.getElementById("qa-claim");
    if (!claim) return;
    startHeartbeat();
    var pending = early.shift();
    early = [];
    if (pending && !isField(document.activeElement)) shortcut(pending);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
