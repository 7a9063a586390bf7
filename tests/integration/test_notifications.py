"""Notifications against real receivers: an aiosmtpd SMTP server and a tiny HTTP SMS provider, both local."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from core import outbox
from core.bank import Bank
from core.clock import clock, utcnow
from core.errors import ValidationFailed
from core.models import Notification, OutboxMessage, User
from core.notifications import LEASE, RetryLater, queue_notification, redrive_stuck, send_notification
from core.notifications.service import claim, deliver
from tests.servers import free_port
from tests.support import auth_headers, make_user

CODE = "917350"
OTP = {"code": CODE, "purpose": "login", "expires_minutes": 10}


class Mailbox:
    """An SMTP receiver (aiosmtpd handler): answers DATA with the scripted replies first, then 250."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.replies: list[str] = []
        self.refuse_with: str | None = None
        self.delay = 0.0
        self.data_commands = 0
        self.accepted: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_commands += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse_with:
            return self.refuse_with
        if self.replies:
            return self.replies.pop(0)
        raw = envelope.original_content or envelope.content
        self.accepted.append(BytesParser(policy=policy.default).parsebytes(raw))  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 Accepted"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def deduplicated(self) -> dict[str, EmailMessage]:
        """What a receiver that deduplicates on Message-ID keeps."""
        return {str(m["Message-ID"]): m for m in self.accepted}


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    box.start()
    try:
        yield box
    finally:
        box.stop()


@contextmanager
def configured(bank: Bank, **changes: Any) -> Iterator[Bank]:
    """The bank fixture is session-wide underneath: change its settings for one test only."""
    original = bank.settings
    bank.settings = dataclasses.replace(original, **changes)
    try:
        yield bank
    finally:
        bank.settings = original


def queue(bank: Bank, user: User, *, channel: str = "email", template: str = "otp_code", **context: Any) -> str:
    with bank.db.transaction() as s:
        return queue_notification(s, user=user, channel=channel, template=template, context=context or OTP).id


def row(bank: Bank, notification_id: str) -> Notification:
    with bank.db.transaction() as s:
        n = s.get(Notification, notification_id)
        assert n is not None
        return n


def stored(bank: Bank, notification_id: str) -> str:
    """Every column of the row as text: where a leaked code or body would show."""
    n = row(bank, notification_id)
    return json.dumps({c.name: getattr(n, c.key) for c in Notification.__table__.columns}, default=str)


def published(bank: Bank) -> list[tuple[str, str, str]]:
    """Run the real outbox relay with a send that records what reached the 'broker'."""
    sent: list[tuple[str, str, str]] = []
    outbox.relay(bank.db, lambda *message: sent.append(message), grace_seconds=0)
    return sent


def no_code_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]  # aiosmtpd's own debug lines aside
    assert ours, "expected log lines"
    assert not [r.getMessage() for r in ours if CODE in r.getMessage() or CODE in str(r.args)]


def text_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None and part.get_content_type() == f"text/{subtype}"
    return str(part.get_content())


def test_queued_with_the_callers_transaction_only(bank: Bank) -> None:
    user = make_user(bank)
    with pytest.raises(RuntimeError), bank.db.transaction() as s:
        queue_notification(s, user=user, channel="email", template="otp_code", context=OTP)
        raise RuntimeError("the caller's change fails")
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 0
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    nid = queue(bank, user)
    n = row(bank, nid)
    assert (n.status, n.recipient, n.message_id, n.subject) == ("queued", user.email, f"<{nid}@bankq>", n.subject)
    assert published(bank) == [("notify.send", "notify", nid)]
    with pytest.raises(ValidationFailed) as no_phone, bank.db.transaction() as s:
        queue_notification(s, user=user, channel="sms", template="otp_code", context=OTP)
    assert no_phone.value.code == "no_phone"
    with pytest.raises(ValidationFailed) as missing, bank.db.transaction() as s:
        queue_notification(s, user=user, channel="email", template="otp_code", context={"code": CODE})
    assert missing.value.code == "missing_context"


def test_email_over_smtp_headers_parts_and_escaping(bank: Bank, mailbox: Mailbox, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    user = make_user(bank)
    payee = '<script>alert("x")</script> & Sons'
    nid = queue(bank, user, template="transfer_confirmation", code=CODE, amount="1250.00", currency="EUR", payee=payee)
    with configured(bank, smtp_host="127.0.0.1", smtp_port=mailbox.port, smtp_from="bankq <alerts@bank.test>"):
        assert send_notification(bank, nid) == "sent"
        assert send_notification(bank, nid) is None  # a duplicate delivery finds it sent
    assert len(mailbox.accepted) == 1
    message = mailbox.accepted[0]
    assert message["Message-ID"] == f"<{nid}@bankq>" == row(bank, nid).message_id
    assert (message["From"], message["To"], message["Subject"]) == (
        "bankq <alerts@bank.test>", user.email, "Confirm your transfer")
    assert message["Date"] and message.get_content_type() == "multipart/alternative"
    assert mailbox.envelopes == [("alerts@bank.test", [user.email])]
    text, html = text_of(message, "plain"), text_of(message, "html")
    assert CODE in text and CODE in html and payee in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Sons" in html and "<script>" not in html
    n = row(bank, nid)
    assert n.status == "sent" and n.sent_at is not None and n.attempts == 1 and n.last_error is None
    assert n.context == {"amount": "1250.00", "currency": "EUR", "payee": payee}
    assert CODE not in stored(bank, nid) and "enter this code" not in stored(bank, nid)
    no_code_in_logs(caplog)


def test_451_twice_then_250_delivers_once_with_backoff(bank: Bank, mailbox: Mailbox, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    user = make_user(bank)
    nid = queue(bank, user)
    mailbox.replies = ["451 4.3.0 Try again later", "451 4.3.0 Try again later"]
    with configured(bank, smtp_host="127.0.0.1", smtp_port=mailbox.port):
        waits = []
        for _ in range(2):
            before = utcnow()
            with pytest.raises(RetryLater) as deferred:
                send_notification(bank, nid)
            waits.append(deferred.value.retry_in)
            n = row(bank, nid)
            assert n.status == "queued" and "451" in (n.last_error or "")
            assert n.next_attempt_at >= before + timedelta(seconds=deferred.value.retry_in)
        assert waits == [5, 10]
        assert send_notification(bank, nid) == "sent"
    assert mailbox.data_commands == 3 and len(mailbox.accepted) == 1
    n = row(bank, nid)
    assert (n.status, n.attempts, n.last_error) == ("sent", 3, None) and "code" not in (n.context or {})
    no_code_in_logs(caplog)


def test_celery_task_retries_deferrals_and_not_refusals(bank: Bank, mailbox: Mailbox, monkeypatch) -> None:
    import tasks.runtime
    from tasks.notify import send

    monkeypatch.setattr(tasks.runtime, "_bank", bank)  # the worker's Bank is this test's
    user = make_user(bank)
    with configured(bank, smtp_host="127.0.0.1", smtp_port=mailbox.port):
        mailbox.replies = ["451 4.3.0 Busy", "421 4.3.2 Closing"]
        retried = queue(bank, user)
        assert send.apply(args=[retried], task_id=retried).get() == "sent"  # eager: retries run at once
        assert mailbox.data_commands == 3 and len(mailbox.accepted) == 1

        mailbox.refuse_with = "550 5.1.1 No such mailbox"
        refused = queue(bank, user)
        assert send.apply(args=[refused], task_id=refused).get() == "failed"
        assert mailbox.data_commands == 4 and len(mailbox.accepted) == 1  # one attempt, no retry
    n = row(bank, refused)
    assert n.status == "failed" and n.attempts == 1 and "550" in (n.last_error or "")
    assert "code" not in (n.context or {})


def test_550_is_permanent(bank: Bank, mailbox: Mailbox) -> None:
    user = make_user(bank)
    nid = queue(bank, user)
    mailbox.refuse_with = "550 5.1.1 No such mailbox"
    with configured(bank, smtp_host="127.0.0.1", smtp_port=mailbox.port):
        assert send_notification(bank, nid) == "failed"
        assert send_notification(bank, nid) is None
        assert redrive_stuck(bank) == 0
    n = row(bank, nid)
    assert n.status == "failed" and n.sent_at is None and "550" in (n.last_error or "")
    assert mailbox.data_commands == 1 and not mailbox.accepted
    assert CODE not in stored(bank, nid)


def test_smtp_down_then_up_delivers_once(bank: Bank, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    user = make_user(bank)
    nid = queue(bank, user)
    assert published(bank) == [("notify.send", "notify", nid)]
    box = Mailbox(free_port())  # nothing listens there yet
    with configured(bank, smtp_host="127.0.0.1", smtp_port=box.port):
        with pytest.raises(RetryLater):
            send_notification(bank, nid)
        n = row(bank, nid)
        assert n.status == "queued" and "Connection" in (n.last_error or "")
        assert redrive_stuck(bank) == 0  # the retry is due in 5 s: not lost yet
        # The retry message was lost too (say the broker was flushed): the re-drive tick publishes again.
        clock.freeze(n.next_attempt_at + timedelta(seconds=bank.settings.redrive_after_seconds + 1))
        assert redrive_stuck(bank) == 1
        assert published(bank) == [("notify.send", "notify", nid)]
        box.start()
        try:
            assert send_notification(bank, nid) == "sent"
            assert send_notification(bank, nid) is None
        finally:
            box.stop()
    assert len(box.accepted) == 1 and box.accepted[0]["Message-ID"] == f"<{nid}@bankq>"
    assert CODE not in stored(bank, nid)
    no_code_in_logs(caplog)


def test_concurrent_duplicate_deliveries_send_once(bank: Bank, mailbox: Mailbox) -> None:
    user = make_user(bank)
    nid = queue(bank, user)
    mailbox.delay = 0.5  # the first send is still in flight when the duplicate arrives
    start = threading.Barrier(3)
    results: list[str | None] = []

    def deliver_once() -> None:
        start.wait()
        results.append(send_notification(bank, nid))

    with configured(bank, smtp_host="127.0.0.1", smtp_port=mailbox.port):
        workers = [threading.Thread(target=deliver_once) for _ in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(10)
    assert sorted(results, key=str) == [None, None, "sent"]
    assert len(mailbox.accepted) == 1 and row(bank, nid).attempts == 1


def test_worker_killed_after_send_resends_with_the_same_message_id(bank: Bank, mailbox: Mailbox) -> None:
    """The documented guarantee: at most one message per Message-ID at a deduplicating receiver, at least once
    otherwise. A worker dies after the server accepted the message and before "sent" was recorded."""
    user = make_user(bank)
    nid = queue(bank, user)
    published(bank)
    with configured(bank, smtp_host="127.0.0.1", smtp_port=mailbox.port):
        taken = claim(bank, nid)
        assert taken is not None
        deliver(bank.settings, taken)  # ... and the worker dies here: nothing recorded
        assert row(bank, nid).status == "sending"
        assert send_notification(bank, nid) is None  # its lease holds off duplicates meanwhile
        assert redrive_stuck(bank) == 0
        clock.freeze(utcnow() + LEASE + timedelta(seconds=1))
        assert redrive_stuck(bank) == 1
        assert published(bank) == [("notify.send", "notify", nid)]
        assert send_notification(bank, nid) == "sent"
        assert send_notification(bank, nid) is None
    assert len(mailbox.accepted) == 2
    assert {str(m["Message-ID"]) for m in mailbox.accepted} == {f"<{nid}@bankq>"}
    assert list(mailbox.deduplicated()) == [f"<{nid}@bankq>"]
    n = row(bank, nid)
    assert (n.status, n.attempts) == ("sent", 2) and "code" not in (n.context or {})


def test_expired_code_is_not_sent(bank: Bank, mailbox: Mailbox) -> None:
    user = make_user(bank)
    nid = queue(bank, user)
    clock.freeze(utcnow() + timedelta(minutes=11))
    with configured(bank, smtp_host="127.0.0.1", smtp_port=mailbox.port):
        assert send_notification(bank, nid) == "failed"
    assert not mailbox.accepted and "expired" in (row(bank, nid).last_error or "")
    assert CODE not in stored(bank, nid)


def test_eml_file_without_smtp_host(bank: Bank, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    user = make_user(bank)
    nid = queue(bank, user)
    with configured(bank, smtp_host=None, data_dir=tmp_path):
        assert send_notification(bank, nid) == "sent"
    files = list((tmp_path / "mail").iterdir())
    assert [f.name for f in files] == [f"{nid}@bankq.eml"]
    message = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    assert message["Message-ID"] == f"<{nid}@bankq>" and CODE in text_of(message, "plain")
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("core.notifications.mail")]
    assert len(lines) == 1 and user.email in lines[0] and "otp_code" in lines[0] and f"<{nid}@bankq>" in lines[0]
    no_code_in_logs(caplog)


def test_sms_file_provider(bank: Bank, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    user = make_user(bank, phone="+15550100")
    nid = queue(bank, user, channel="sms")
    with configured(bank, sms_provider_url=None, data_dir=tmp_path):
        assert send_notification(bank, nid) == "sent"
    (sms,) = list((tmp_path / "sms").iterdir())
    content = sms.read_text()
    assert content.startswith(f"To: +15550100\nId: <{nid}@bankq>\n") and CODE in content
    assert row(bank, nid).recipient == "+15550100" and CODE not in stored(bank, nid)
    no_code_in_logs(caplog)


class Provider(ThreadingHTTPServer):
    """A tiny SMS provider: answers with the scripted statuses, then 200; quotes the text back, as some do."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ProviderHandler)
        self.statuses: list[int] = []
        self.requests: list[tuple[str, str | None, dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/messages"


class ProviderHandler(BaseHTTPRequestHandler):
    server: Provider

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, self.headers.get("Authorization"), body))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        reply = json.dumps({"status": status, "text": body.get("text")}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_sms_http_provider(bank: Bank, provider: Provider, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    user = make_user(bank, phone="+15550101")
    with configured(bank, sms_provider_url=provider.url, sms_provider_token="tok-123"):
        ok = queue(bank, user, channel="sms")
        assert send_notification(bank, ok) == "sent"
        path, authorization, body = provider.requests[0]
        assert (path, authorization) == ("/v1/messages", "Bearer tok-123")
        assert body["to"] == "+15550101" and body["id"] == f"<{ok}@bankq>" and CODE in body["text"]

        provider.statuses = [500]
        flaky = queue(bank, user, channel="sms")
        with pytest.raises(RetryLater):
            send_notification(bank, flaky)
        assert row(bank, flaky).status == "queued" and "HTTP 500" in (row(bank, flaky).last_error or "")
        assert send_notification(bank, flaky) == "sent"
        assert [b["id"] for _, _, b in provider.requests[1:]] == [f"<{flaky}@bankq>"] * 2  # same id: dedupable

        provider.statuses = [400]
        refused = queue(bank, user, channel="sms")
        assert send_notification(bank, refused) == "failed"
        assert send_notification(bank, refused) is None
    assert len(provider.requests) == 4
    n = row(bank, refused)
    assert n.status == "failed" and "HTTP 400" in (n.last_error or "")
    for nid in (ok, flaky, refused):
        assert CODE not in stored(bank, nid)  # the provider quoted the text back; none of it was kept
    no_code_in_logs(caplog)


def test_in_app_needs_no_transport(bank: Bank) -> None:
    user = make_user(bank)
    nid = queue(bank, user, channel="in_app", template="reminder", message="Your card expires soon.")
    assert send_notification(bank, nid) == "sent"
    assert row(bank, nid).recipient == f"user:{user.id}"


def test_list_shows_only_the_callers_and_never_codes(bank: Bank, client, mailbox: Mailbox) -> None:
    alice, bob = make_user(bank), make_user(bank)
    first = queue(bank, alice)
    clock.freeze(utcnow() + timedelta(seconds=1))
    second = queue(bank, alice, channel="in_app", template="reminder", message="Pay the rent")
    clock.freeze(utcnow() + timedelta(seconds=1))
    third = queue(bank, alice, template="password_reset", code=CODE, expires_minutes=15)
    queue(bank, bob)
    with configured(bank, smtp_host="127.0.0.1", smtp_port=mailbox.port):
        assert send_notification(bank, second) == "sent"
        assert claim(bank, third) is not None  # in flight: shows as queued
    headers = auth_headers(client, alice)
    page = client.get("/api/v1/notifications?limit=2", headers=headers)
    assert page.status_code == 200, page.get_json()
    body = page.get_json()
    assert [i["id"] for i in body["items"]] == [third, second]
    assert [i["status"] for i in body["items"]] == ["queued", "sent"]
    assert body["items"][1]["sent_at"] and body["items"][0]["subject"] == "Reset your bankq password"
    assert set(body["items"][0]) == {
        "id", "channel", "template", "subject", "status", "created_at", "sent_at", "attachment"}
    assert body["items"][0]["attachment"] is None
    rest = client.get(f"/api/v1/notifications?limit=2&cursor={body['next_cursor']}", headers=headers).get_json()
    assert [i["id"] for i in rest["items"]] == [first] and rest["next_cursor"] is None
    assert CODE not in page.get_data(as_text=True) + json.dumps(rest)
    bobs = client.get("/api/v1/notifications", headers=auth_headers(client, bob)).get_json()
    assert len(bobs["items"]) == 1 and bobs["items"][0]["id"] not in (first, second, third)
    assert client.get("/api/v1/notifications").status_code == 401
    assert client.get("/api/v1/notifications?limit=0", headers=headers).status_code == 422
    assert client.get("/api/v1/notifications?cursor=nonsense", headers=headers).status_code == 422
    assert "/api/v1/notifications" in client.get("/api/v1/openapi.json").get_json()["paths"]
