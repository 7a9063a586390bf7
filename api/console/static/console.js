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

  // A status update that says what the card already says is not swapped in while the customer is typing in it
  // (the confirmation code of a large transfer): a poll every 2 s, or an event replayed when the stream connects,
  // would otherwise put an empty form in place of the one being filled in.
  function statusOf(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    var card = holder.content.querySelector("[data-status]");
    return card ? card.getAttribute("data-status") : null;
  }
  function beingFilledIn(target) {
    var fields = target.querySelectorAll("input:not([type=hidden]), textarea");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value !== "" || fields[i] === document.activeElement) return true;
    }
    return false;
  }
  function keepsInput(target, html) {
    var card = target.querySelector("[data-status]");
    return card !== null && statusOf(html) === card.getAttribute("data-status") && beingFilledIn(target);
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "job-status" &&
        keepsInput(event.detail.target, event.detail.serverResponse)) {
      event.detail.shouldSwap = false;
    }
  });
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    if (event.target.id === "job-status" && keepsInput(event.target, event.detail.data)) event.preventDefault();
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
  var READY_MS = 5000;
  document.addEventListener("htmx:sseError", function (event) {
    startPolling(event.target);
  });
  // The stream says "ready" as soon as it is open; one that stays silent (a proxy buffering it) is as good as none.
  document.addEventListener("htmx:sseOpen", function (event) {
    var source = event.target;
    event.detail.source.addEventListener("ready", function () {
      source.dataset.streaming = "true";
    });
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[sse-connect]").forEach(function (source) {
      if (typeof window.EventSource === "undefined") {
        startPolling(source);  // no EventSource in this browser at all
        return;
      }
      window.setTimeout(function () {
        if (source.dataset.streaming !== "true") startPolling(source);
      }, READY_MS);
    });
  });
})();
