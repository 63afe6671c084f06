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

// Import page: show how much of the file has been sent; once sent, the server is
// checking and saving the rows.
(function () {
  "use strict";

  document.addEventListener("htmx:xhr:progress", function (event) {
    var bar = document.getElementById("import-progress");
    var text = document.getElementById("import-progress-text");
    if (!bar || !text || !event.detail.lengthComputable) { return; }
    var percent = Math.round((event.detail.loaded / event.detail.total) * 100);
    bar.value = percent;
    text.textContent = percent < 100 ? "正在上传… " + percent + "%" : "上传完成，正在逐行检查并保存…";
  });
})();
