"""Email: the message (stable Message-ID, text and HTML parts) and how it leaves: SMTP, or an .eml file."""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol

from core.clock import utcnow
from core.notifications.attachments import Attachment
from core.notifications.errors import DeliveryDeferred, DeliveryFailed
from core.notifications.templates import Rendered
from core.settings import Settings

log = logging.getLogger(__name__)
SMTP_TIMEOUT_SECONDS = 20


class Mailer(Protocol):
    def send(self, message: EmailMessage, recipient: str) -> None: ...


def build_message(
    settings: Settings,
    *,
    rendered: Rendered,
    recipient: str,
    message_id: str,
    template: str,
    attachments: Sequence[tuple[Attachment, bytes]] = (),
) -> EmailMessage:
    message = EmailMessage()
    message["Message-ID"] = message_id
    message["From"] = settings.smtp_from
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(utcnow())
    message["Auto-Submitted"] = "auto-generated"
    message["X-Bankq-Template"] = template
    message.set_content(rendered.text)
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html")
    for attachment, data in attachments:  # the text and HTML become the first part of a multipart/mixed message
        maintype, subtype = attachment.content_type.split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return message


def safe_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]", "_", message_id.strip("<>")) or "message"


def write_atomically(path: Path, data: bytes) -> None:
    """A resend of the same message replaces its file: one file per message id."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(staged, path)


class SmtpMailer:
    """Standard-library SMTP. 4xx replies, disconnects and timeouts are deferrals; 5xx replies are final."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message: EmailMessage, recipient: str) -> None:
        s = self.settings
        assert s.smtp_host
        envelope_from = parseaddr(s.smtp_from)[1] or s.smtp_from
        smtp: smtplib.SMTP | None = None
        try:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password or "")
            smtp.send_message(message, from_addr=envelope_from, to_addrs=[recipient])
        except smtplib.SMTPAuthenticationError as exc:  # our credentials, not the message: fixable, so retried
            raise DeliveryDeferred(f"SMTP {exc.smtp_code} (authentication failed)") from None
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b""))
            raise _by_code(code, reply, "recipient refused") from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, exc.smtp_error, type(exc).__name__) from None
        except OSError as exc:  # refused, reset, timed out, disconnected, TLS failures
            raise DeliveryDeferred(f"SMTP connection: {type(exc).__name__}: {exc}") from None
        finally:
            if smtp is not None:
                _close(smtp)


def _close(smtp: smtplib.SMTP) -> None:
    # The server already has (or refused) the message; a failing QUIT must not turn a delivery into a retry.
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _by_code(code: int, reply: bytes | str, what: str) -> Exception:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    detail = f"SMTP {code} ({what}): {text[:200]}"
    return DeliveryFailed(detail) if 500 <= code < 600 else DeliveryDeferred(detail)


class FileMailer:
    """No SMTP host (the embedded default): each message lands as data_dir/mail/<message id>.eml."""

    def __init__(self, settings: Settings) -> None:
        self.folder = settings.data_dir / "mail"

    def send(self, message: EmailMessage, recipient: str) -> None:
        path = self.folder / f"{safe_name(str(message['Message-ID']))}.eml"
        write_atomically(path, bytes(message))
        template, message_id = message["X-Bankq-Template"], message["Message-ID"]
        log.info("mail to %s (%s) %s written to %s", recipient, template, message_id, path)


def mailer_for(settings: Settings) -> Mailer:
    return SmtpMailer(settings) if settings.smtp_host else FileMailer(settings)
