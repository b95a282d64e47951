/* Runs in <head>, before the CSS: applies the saved theme, else the system's, so the page never
   flashes the wrong one. Also records the browser's time zone in a cookie, so times rendered on
   the server match the clock on the user's screen. No inline script: the CSP forbids it. */
(function () {
  "use strict";
  var KEY = "leadchat-theme";
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function saved() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "light" || value === "dark" ? value : null;
    } catch (e) {
      return null; // storage disabled: follow the system
    }
  }
  function system() {
    return media && media.matches ? "dark" : "light";
  }
  function apply(theme) {
    document.documentElement.setAttribute("data-bs-theme", theme);
    document.dispatchEvent(new CustomEvent("leadchat:theme", { detail: { theme: theme } }));
  }
  function current() {
    return document.documentElement.getAttribute("data-bs-theme") === "dark" ? "dark" : "light";
  }
  function toggle() {
    var next = current() === "dark" ? "light" : "dark";
    try {
      window.localStorage.setItem(KEY, next);
    } catch (e) {
      /* not remembered, still applied */
    }
    apply(next);
  }

  apply(saved() || system());
  if (media && media.addEventListener) {
    media.addEventListener("change", function () {
      if (!saved()) apply(system());
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-theme-toggle]");
    if (button) toggle();
  });

  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) {
      document.cookie =
        "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (e) {
    /* old browser: the server's zone is used */
  }
})();
