// The employer's card payment for a placement fee (docs/billing.md, "Paying by card").
// Stripe.js takes the card and sends it straight to Stripe; our server only ever sees
// Stripe's ids. The fee shows as paid once our webhook has booked it (we poll).
(function () {
  "use strict";

  var root = document.getElementById("fee-payment");
  if (!root || !root.dataset.publishableKey) { return; }
  var placement = root.dataset.placement;
  var form = document.getElementById("card-form");
  var button = document.getElementById("card-pay");
  var errorBox = document.getElementById("card-error");
  var progress = document.getElementById("card-progress");
  var statusBox = document.getElementById("fee-status");
  var paidBox = document.getElementById("fee-paid");
  var csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"];

  // Stripe's error codes in words an employer understands; never Stripe's English.
  var MESSAGES = {
    card_declined: "银行卡被拒绝，请换一张卡或联系发卡银行",
    expired_card: "银行卡已过期，请换一张卡",
    incorrect_cvc: "安全码不正确，请检查卡背面的三位数字",
    invalid_cvc: "安全码不正确，请检查卡背面的三位数字",
    incorrect_number: "卡号不正确，请检查后重新输入",
    invalid_number: "卡号不正确，请检查后重新输入",
    incomplete_number: "卡号不完整",
    invalid_expiry_month: "有效期月份不正确",
    invalid_expiry_year: "有效期年份不正确",
    insufficient_funds: "余额不足，请换一张卡",
    processing_error: "发卡银行处理出错，请稍后重试",
    payment_intent_authentication_failure: "发卡银行身份验证未通过，付款未完成",
    setup_intent_authentication_failure: "发卡银行身份验证未通过，付款未完成"
  };
  var GENERIC = "银行卡信息有误或无法使用，请检查卡号、有效期和安全码后重试";

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    progress.hidden = true;
  }

  function say(message) {
    progress.textContent = message;
    progress.hidden = false;
  }

  // Only our own sentences reach the screen; anything else shows the generic one.
  function fail(message) {
    var error = new Error(message);
    error.ours = true;
    return error;
  }

  function stripeError(error) {
    var code = error && (error.decline_code || error.code);
    return fail(MESSAGES[code] || GENERIC);
  }

  async function call(method, url, body) {
    var response;
    try {
      response = await fetch(url, {
        method: method,
        credentials: "same-origin",
        headers: { "x-csrftoken": csrf, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body)
      });
    } catch (err) {
      throw fail("网络连接失败，请检查网络后重试");
    }
    var data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      throw fail(data.detail || "操作失败（" + response.status + "），请刷新页面后重试");
    }
    return data;
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  // Until our webhook has booked the payment the fee is not paid, whatever the card said.
  async function waitForBooking(tries) {
    for (var i = 0; i < tries; i++) {
      var fee = await call("GET", "/fees/" + placement + "/status");
      statusBox.textContent = fee.label;
      if (fee.booked) {
        if (form) { form.hidden = true; }
        progress.hidden = true;
        paidBox.hidden = false;
        return true;
      }
      await sleep(1000);
    }
    say("付款已提交，银行确认可能需要几分钟；请稍后刷新本页查看状态。");
    return false;
  }

  if (typeof Stripe !== "function") {
    showError("银行卡付款组件加载失败，请检查网络后刷新页面");
    return;
  }
  var stripe = Stripe(root.dataset.publishableKey);
  var card = stripe.elements({ locale: "zh" }).create("card", { hidePostalCode: true });
  var loading = document.getElementById("card-loading");
  if (loading) { loading.remove(); }
  card.mount("#card-element");
  button.disabled = false;

  if (root.dataset.status === "processing") {
    say("正在确认上一次付款…");
    waitForBooking(10).catch(function () { progress.hidden = true; });
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    button.disabled = true;
    try {
      say("正在把银行卡信息直接提交给 Stripe…");
      var setup = await call("POST", "/fees/" + placement + "/card", {});
      var checked = await stripe.confirmCardSetup(setup.setup_client_secret, {
        payment_method: { card: card }
      });
      if (!checked || checked.error || !checked.setupIntent) {
        throw stripeError(checked && checked.error);
      }
      say("银行卡验证通过，正在扣款…");
      var charge = await call("POST", "/fees/" + placement + "/card/charge", {
        setup_intent_id: checked.setupIntent.id
      });
      if (charge.status === "requires_action") {
        say("请在弹出的窗口中完成发卡银行的身份验证…");
        var confirmed = await stripe.confirmCardPayment(charge.payment_client_secret);
        if (!confirmed || confirmed.error) { throw stripeError(confirmed && confirmed.error); }
      } else if (charge.status === "requires_payment_method" || charge.status === "canceled") {
        throw fail(MESSAGES.card_declined);
      }
      say("付款已提交，正在等待 Stripe 的付款成功通知…");
      if (!(await waitForBooking(60))) { button.disabled = false; }
    } catch (err) {
      showError(err && err.ours ? err.message : GENERIC);
      button.disabled = false;
    }
  });
})();
