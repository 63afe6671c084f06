// The exam page: a countdown from the server's remaining seconds, a retry for answers
// that did not reach the server (a dropped phone connection), and the hand-in when the
// time is up. The server enforces the limit regardless of this script.
(function () {
  "use strict";

  var clock = document.getElementById("countdown");
  var submit = document.getElementById("exam-submit");
  if (!clock || !submit) { return; }
  var endsAt = Date.now() + parseInt(clock.getAttribute("data-seconds-left"), 10) * 1000;

  function tick() {
    var left = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
    var minutes = Math.floor(left / 60);
    var seconds = left % 60;
    clock.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
    if (left <= 60) { clock.classList.add("urgent"); }
    if (left === 0) {
      clock.textContent = "时间到，正在交卷…";
      submit.submit();
      return;
    }
    window.setTimeout(tick, 1000);
  }
  tick();

  function statusOf(form) {
    return document.getElementById("saved-" + form.getAttribute("data-question"));
  }

  // Not sent: say so, and send the form again every few seconds until it goes through.
  document.addEventListener("htmx:sendError", function (event) {
    var form = event.detail.elt;
    if (!form || !form.classList || !form.classList.contains("exam-form")) { return; }
    var status = statusOf(form);
    if (status) { status.textContent = "未保存（网络中断），恢复后自动重试…"; status.classList.add("field-error"); }
    window.setTimeout(function () { window.htmx.trigger(form, "change"); }, 4000);
  });

  document.addEventListener("htmx:afterSwap", function () {
    var answered = document.querySelectorAll(".exam-form input:checked");
    var forms = {};
    for (var i = 0; i < answered.length; i++) {
      forms[answered[i].form.getAttribute("data-question")] = true;
    }
    var counter = document.getElementById("answered");
    if (counter) { counter.textContent = Object.keys(forms).length; }
  });
})();
