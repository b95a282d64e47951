/* Automation errors page: resolve in place. */
(function () {
  "use strict";
  var cfg = LC.config();
  document.addEventListener("click", async function (event) {
    var button = event.target.closest("button[data-resolve]");
    if (!button) return;
    button.disabled = true;
    try {
      var error = await LC.api(cfg.api.errors + button.dataset.resolve + "/resolve/", { method: "POST" });
      button.replaceWith(LC.el("span", {
        className: "badge text-bg-success",
        text: "Resolved" + (error.resolved_by ? " by " + error.resolved_by : ""),
      }));
      LC.toast("Error marked resolved.");
    } catch (err) {
      button.disabled = false;
      LC.toast(err.message, { error: true });
    }
  });
})();
