"""A file sent with an email (the monthly statement's PDF). Email only: SMS and in-app messages carry none.

The notification stores where the file is (relative to the data folder, which every process shares), its name,
type, size and SHA-256; the sender reads it when the message leaves and refuses a file that is missing, larger than
BANKQ_MAIL_ATTACHMENT_MAX_BYTES or not the one that was queued, so a retried message attaches the same bytes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from core.errors import ValidationFailed
from core.notifications.errors import DeliveryFailed
from core.settings import Settings

CONTENT_TYPES = ("application/pdf", "text/csv")
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")


@dataclass(frozen=True)
class Attachment:
    path: str  # relative to the data folder, e.g. "reports/<name>.pdf"
    filename: str  # what the recipient sees
    content_type: str
    size: int
    sha256: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attachment:
        return cls(**{k: data[k] for k in ("path", "filename", "content_type", "size", "sha256")})

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def check_attachment(channel: str, attachment: Attachment) -> None:
    """At queueing time: a mistake is the caller's, in the caller's transaction. (Whether the file is small enough
    to send is the caller's call, with `fits`; the sender holds it to the bound again.)"""
    if channel != "email":
        raise ValidationFailed("Only email carries attachments.", code="attachment_not_supported",
                               errors={"attachment": ["SMS and in-app messages carry no files."]})
    relative = PurePosixPath(attachment.path)
    problems = []
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        problems.append("The path must lie inside the data folder.")
    if not _FILENAME.fullmatch(attachment.filename):
        problems.append("The file name must be plain: letters, digits, '.', '_' and '-'.")
    if attachment.content_type not in CONTENT_TYPES:
        problems.append(f"The type must be one of {', '.join(CONTENT_TYPES)}.")
    if attachment.size <= 0:
        problems.append("The file must not be empty.")
    if not re.fullmatch(r"[0-9a-f]{64}", attachment.sha256):
        problems.append("The SHA-256 must be 64 lowercase hex digits.")
    if problems:
        raise ValidationFailed("The attachment cannot be sent.", code="invalid_attachment",
                               errors={"attachment": problems})


def fits(size: int | None, settings: Settings) -> bool:
    """Whether a file of `size` bytes may go with an email (BANKQ_MAIL_ATTACHMENT_MAX_BYTES; 0 sends none)."""
    return size is not None and 0 < size <= settings.mail_attachment_max_bytes


def read_attachment(attachment: Attachment, settings: Settings) -> bytes:
    """The file's bytes, as queued; DeliveryFailed (never retried) when they are not there any more."""
    root = settings.data_dir.resolve()
    path = (root / attachment.path).resolve()
    if root not in path.parents or not fits(attachment.size, settings):
        raise DeliveryFailed(f"The attachment {attachment.filename} may not be sent.")
    try:
        with Path(path).open("rb") as fh:
            data = fh.read(attachment.size + 1)
    except OSError as exc:
        raise DeliveryFailed(f"The attachment {attachment.filename} is gone ({type(exc).__name__}).") from None
    if len(data) != attachment.size or hashlib.sha256(data).hexdigest() != attachment.sha256:
        raise DeliveryFailed(f"The attachment {attachment.filename} is not the file that was queued.")
    return data
