// bankq console: small enhancements on top of plain HTML forms and htmx. No inline script anywhere (CSP).
(function () {
  "use strict";

  // A form shows that it is working and cannot be sent twice from this page. (The server would take a second
  // send anyway: each form carries its own Idempotency-Key, so the bank accepts it once.)
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.sent === "true") {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "true";
    form.setAttribute("aria-busy", "true");
    var button = event.submitter || form.querySelector("button[type=submit]");
    if (button && button.dataset.working) {
      button.dataset.label = button.textContent;
      button.textContent = button.dataset.working;
      button.classList.add("is-working");
    }
  });

  // Coming back to a page from the browser's cache (back button): its forms may be sent again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sent]").forEach(function (form) {
      delete form.dataset.sent;
      form.removeAttribute("aria-busy");
      var button = form.querySelector("button.is-working");
      if (button) {
        button.textContent = button.dataset.label;
        button.classList.remove("is-working");
      }
    });
  });

  // Live status falls back to polling when the event stream cannot be held open (a proxy, a busy server).
  var POLL_MS = 2000;
  function finished(target) {
    return target.querySelector("[data-terminal]") !== null;
  }
  function startPolling(source) {
    if (source.dataset.polling === "true") return;
    var target = source.querySelector("[hx-trigger='bankq:poll']");
    if (!target || finished(target)) return;
    source.dataset.polling = "true";
    var timer = window.setInterval(function () {
      if (!document.body.contains(target) || finished(target)) {
        window.clearInterval(timer);
        stopStream(source);
        return;
      }
      window.htmx.trigger(target, "bankq:poll");
    }, POLL_MS);
  }
  // The job is over: the extension would go on retrying the stream, so put a copy without it in its place
  // (htmx.remove lets the extension close its EventSource).
  function stopStream(source) {
    if (!document.body.contains(source)) return;
    var copy = source.cloneNode(true);
    copy.removeAttribute("sse-connect");
    copy.removeAttribute("hx-ext");
    source.parentNode.insertBefore(copy, source);
    window.htmx.remove(source);
  }
  document.addEventListener("htmx:sseError", function (event) {
    startPolling(event.target);
  });
  // An EventSource the browser could not open at all (no support) also polls.
  document.addEventListener("DOMContentLoaded", function () {
    if (typeof window.EventSource === "undefined") {
      document.querySelectorAll("[sse-connect]").forEach(startPolling);
    }
  });
})();
