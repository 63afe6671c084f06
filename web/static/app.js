// Show HTMX request failures (403, 404, 500, network) in the page's banner,
// since HTMX does not swap error responses into the page.
(function () {
  "use strict";

  function flash(message) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.textContent = message;
    box.hidden = false;
  }

  function detailOf(xhr) {
    // Error pages carry the message in <p class="error">; show just that sentence.
    var html = xhr && xhr.responseText;
    if (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var p = doc.querySelector(".error");
      if (p) { return p.textContent.trim(); }
    }
    return "操作失败（" + (xhr ? xhr.status : "网络错误") + "），请刷新页面后重试";
  }

  document.addEventListener("htmx:responseError", function (event) {
    flash(detailOf(event.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    flash("网络连接失败，请检查网络后重试");
  });
  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("flash");
    if (box) { box.hidden = true; }
  });
})();
