/* Site admin: the embed snippet's Copy buttons. */
document.addEventListener("click", function (e) {
  var target = e.target.closest && e.target.closest("[data-copy-target]");
  if (!target) return;
  var text = document.getElementById(target.getAttribute("data-copy-target")).textContent;
  navigator.clipboard.writeText(text).then(function () {
    target.textContent = "Copied";
    setTimeout(function () { target.textContent = "Copy"; }, 1500);
  });
});
