// Allot web UI: progressive enhancements only; every page works without it.
"use strict";
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", function () {
  // Copy buttons: data-copy names the input whose value is copied.
  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var input = document.getElementById(btn.getAttribute("data-copy"));
      var status = document.getElementById("copy-status");
      var done = function (ok) {
        if (status) status.textContent = ok ? "Copied to the clipboard." : "Select the key and copy it with your keyboard.";
        btn.textContent = ok ? "Copied" : "Copy";
      };
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(function () { done(true); }, function () { done(document.execCommand("copy")); });
      } else {
        done(document.execCommand("copy"));
      }
    });
  });

  // Traffic forms say what the change will do as the number is typed.
  document.querySelectorAll("form[data-traffic]").forEach(function (form) {
    var from = parseFloat(form.getAttribute("data-traffic"));
    var input = form.querySelector("input[name=traffic]");
    var explain = form.querySelector(".explain");
    var fmt = function (n) { return (Math.round(n * 100) / 100).toString() + " %"; };
    var update = function () {
      var to = parseFloat(String(input.value).replace("%", ""));
      if (isNaN(to) || to < 0 || to > 100) {
        explain.textContent = "Enter a percentage from 0 to 100.";
      } else if (to > from) {
        explain.textContent = "Everyone assigned so far keeps their variation; about " + fmt(to - from) + " more subjects enter.";
      } else if (to < from) {
        explain.textContent = "About " + fmt(from - to) + " of subjects leave the experiment; raising it back brings exactly them back.";
      } else {
        explain.textContent = "Nothing changes: the traffic is already " + fmt(from) + ".";
      }
    };
    input.addEventListener("input", update);
  });
});
