"""Notification templates and the pure parts of sending: rendering, escaping, back-off, redaction."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from core.errors import ValidationFailed
from core.notifications.attachments import Attachment, check_attachment, fits, read_attachment
from core.notifications.errors import DeliveryFailed
from core.notifications.mail import FileMailer, build_message, safe_name
from core.notifications.service import MAX_BACKOFF_SECONDS, _code_expired, _redact, backoff_seconds
from core.notifications.templates import FOLDER, TEMPLATES, render_email, render_sms, template_for
from core.settings import Settings

SAMPLES = {
    "otp_code": {"code": "482913", "purpose": "transfer", "expires_minutes": 10},
    "password_reset": {"code": "482913", "expires_minutes": 15},
    "transfer_posted": {"amount": "12.50", "currency": "EUR", "transfer_id": "t-1"},
    "transfer_failed": {
        "amount": "12.50", "currency": "EUR", "transfer_id": "t-1", "failure_code": "insufficient_funds"
    },
    "transfer_receipts": {"transfers": [
        {"amount": "12.50", "currency": "EUR", "transfer_id": "t-1", "status": "posted", "failure_code": None},
        {"amount": "99.00", "currency": "EUR", "transfer_id": "t-2", "status": "failed",
         "failure_code": "insufficient_funds"},
    ]},
    "transfer_confirmation": {"code": "482913", "amount": "1200.00", "currency": "EUR", "payee": "Ada"},
    "kyc_outcome": {"status": "rejected", "reasons": ["document_expired", "name_mismatch"]},
    "kyc_reminder": {"days": 6},
    "reminder": {"message": "Your card expires next month."},
    "webhook_disabled": {"url": "https://example.com/hooks", "reason": "the endpoint answered 410 Gone"},
    "monthly_statement": {
        "account_number": "12345678903", "month": "October 2026", "download_path": "/api/v1/reports/r-1/download"
    },
}


def test_every_template_has_its_three_files_and_a_sample() -> None:
    assert set(SAMPLES) == set(TEMPLATES)
    for name in TEMPLATES:
        for suffix in (".txt", ".html", ".sms.txt"):
            assert (FOLDER / f"{name}{suffix}").is_file(), f"{name}{suffix}"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_renders_every_value_it_is_given(name: str) -> None:
    context = SAMPLES[name]
    email, sms = render_email(name, context), render_sms(name, context)
    assert email.subject == TEMPLATES[name].subject and email.html and "<html" in email.html
    values = [(k, v) for line in context.get("transfers", []) for k, v in line.items() if k != "status"]
    for key, value in [*context.items(), *values]:
        if key in ("purpose", "status", "reasons", "transfers") or value is None:
            continue
        assert str(value) in email.text and str(value) in email.html, key
    assert len(sms.text) <= 160 and "\n" not in sms.text
    if "code" in context:
        assert context["code"] in sms.text and context["code"] not in email.subject


def test_html_is_escaped_and_text_is_not() -> None:
    hostile = {**SAMPLES["transfer_confirmation"], "payee": "<b onmouseover=x>Eve</b> & co"}
    email = render_email("transfer_confirmation", hostile)
    assert "&lt;b onmouseover=x&gt;Eve&lt;/b&gt; &amp; co" in email.html  # type: ignore[operator]
    assert "<b onmouseover" not in email.html  # type: ignore[operator]
    assert "<b onmouseover=x>Eve</b> & co" in email.text


def test_purpose_and_outcome_wording() -> None:
    assert "confirm a transfer" in render_email("otp_code", SAMPLES["otp_code"]).text
    assert "document_expired" in render_email("kyc_outcome", SAMPLES["kyc_outcome"]).html  # type: ignore[operator]
    verified = render_email("kyc_outcome", {"status": "verified", "reasons": []})
    assert "verified" in verified.text and "Reasons" not in verified.text
    posted = render_email("transfer_failed", {**SAMPLES["transfer_failed"], "failure_code": None})
    assert "()" not in posted.text


def test_unknown_template_and_missing_context_are_refused() -> None:
    with pytest.raises(ValidationFailed) as unknown:
        template_for("nope", {})
    assert unknown.value.code == "unknown_template"
    with pytest.raises(ValidationFailed) as missing:
        template_for("otp_code", {"code": "1"})
    assert missing.value.code == "missing_context" and "purpose" in str(missing.value.errors)


def test_email_message_shape() -> None:
    settings = Settings(data_dir=Path("/tmp"), database_url="sqlite://", redis_url=None, broker_url="memory://",
                        secret_key="x", smtp_from="bankq <no-reply@bank.test>")
    rendered = render_email("reminder", SAMPLES["reminder"])
    message = build_message(settings, rendered=rendered, recipient="a@example.com", message_id="<n-1@bankq>",
                            template="reminder")
    assert message["Message-ID"] == "<n-1@bankq>" and message["To"] == "a@example.com"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert safe_name("<n-1@bankq>") == "n-1@bankq" and safe_name("<../../etc/x>") == ".._.._etc_x"


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(n) for n in range(1, 6)] == [5, 10, 20, 40, 80]
    assert backoff_seconds(50) == MAX_BACKOFF_SECONDS


def test_codes_are_redacted_from_errors_and_expire() -> None:
    assert _redact("provider said: 482913 is your code", {"code": "482913"}) == "provider said: [redacted] is your code"
    assert _redact("nothing", {}) == "nothing"
    created = datetime(2026, 1, 1, tzinfo=UTC)
    context = {"code": "1", "expires_minutes": 10}
    assert not _code_expired(context, created, datetime(2026, 1, 1, 0, 9, tzinfo=UTC))
    assert _code_expired(context, created, datetime(2026, 1, 1, 0, 10, tzinfo=UTC))
    assert not _code_expired({"message": "x"}, created, datetime(2027, 1, 1, tzinfo=UTC))


def _attachment(data: bytes, **changes: object) -> Attachment:
    fields = {"path": "reports/r-1.pdf", "filename": "statement-12345678903-2026-10-01-2026-10-31.pdf",
              "content_type": "application/pdf", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return Attachment(**{**fields, **changes})  # type: ignore[arg-type]


def test_only_email_carries_a_plain_file_from_inside_the_data_folder() -> None:
    good = _attachment(b"%PDF-1.4 x")
    check_attachment("email", good)
    for channel in ("sms", "in_app"):
        with pytest.raises(ValidationFailed) as refused:
            check_attachment(channel, good)
        assert refused.value.code == "attachment_not_supported"
    for bad in ({"path": "../secret_key"}, {"path": "/etc/passwd"}, {"filename": "a b.pdf"},
                {"filename": "../x.pdf"}, {"content_type": "text/html"}, {"size": 0}, {"sha256": "abc"}):
        with pytest.raises(ValidationFailed) as invalid:
            check_attachment("email", _attachment(b"%PDF-1.4 x", **bad))
        assert invalid.value.code == "invalid_attachment", bad


def test_the_file_is_read_at_send_time_as_queued_and_within_the_bound(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url="sqlite://", redis_url=None, broker_url="memory://",
                        secret_key="x", mail_attachment_max_bytes=64)
    data = b"%PDF-1.4 the statement"
    (tmp_path / "data" / "reports").mkdir(parents=True)
    (tmp_path / "data" / "reports" / "r-1.pdf").write_bytes(data)
    assert read_attachment(_attachment(data), settings) == data
    assert fits(64, settings) and not fits(65, settings)
    assert not fits(1, replace(settings, mail_attachment_max_bytes=0))
    (tmp_path / "outside.pdf").write_bytes(data)
    for refused in (_attachment(data, sha256=hashlib.sha256(b"other").hexdigest()),  # not the file queued
                    _attachment(data, path="reports/gone.pdf"),
                    _attachment(data, path="../outside.pdf")):  # outside the data folder
        with pytest.raises(DeliveryFailed):
            read_attachment(refused, settings)
    with pytest.raises(DeliveryFailed):  # the bound was lowered since it was queued
        read_attachment(_attachment(data), replace(settings, mail_attachment_max_bytes=8))


def test_an_attachment_rides_in_the_eml_file_of_the_embedded_default(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="sqlite://", redis_url=None, broker_url="memory://",
                        secret_key="x")
    data = bytes(range(256)) * 40  # binary: base64 in the message, byte for byte back out
    context = {**SAMPLES["monthly_statement"], "attached": True}
    rendered = render_email("monthly_statement", context)
    assert "attached to this email as a PDF" in rendered.text and "attached to this email" in rendered.html
    assert "attached to" not in render_email("monthly_statement", SAMPLES["monthly_statement"]).text
    message = build_message(settings, rendered=rendered, recipient="a@example.com", message_id="<n-2@bankq>",
                            template="monthly_statement", attachments=[(_attachment(data), data)])
    FileMailer(settings).send(message, "a@example.com")
    parsed = BytesParser(policy=policy.default).parsebytes((tmp_path / "mail" / "n-2@bankq.eml").read_bytes())
    assert parsed.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["multipart/alternative", "application/pdf"]
    assert "attached to this email" in parsed.get_body(("plain",)).get_content()
    [part] = list(parsed.iter_attachments())
    assert part.get_content_type() == "application/pdf" and part.get_content() == data
    assert part.get_filename() == "statement-12345678903-2026-10-01-2026-10-31.pdf"
