"""One-time codes: issued in the caller's transaction and sent as a notification; only an HMAC is ever stored.

Verifying counts a wrong code in the caller's session and then raises. The caller must commit that session before
passing the error on (a rollback would hand the guesser the attempt back): it raises `Recorded`, which does that.

    with db.transaction() as s:
        try:
            otp.verify_for_subject(s, settings, user, purpose="transfer", subject_id=t.id, code=code, binding=b)
        except BankqError as exc:
            raise Recorded(exc) from None
        ...the effect the code unlocks, in the same transaction as the code being used up...

`verify_own_code` does exactly that for a caller with nothing else to write.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import case, select, text, update
from sqlalchemy.orm import Session

from core import jobs
from core.clock import as_utc, isoformat, utcnow
from core.db import Database, Recorded
from core.errors import BankqError, Gone, NotFound, RateLimited, ValidationFailed
from core.idempotency import Accepted, accept, fingerprint
from core.models import OneTimeCode, User, new_id
from core.notifications import queue_notification
from core.settings import Settings

log = logging.getLogger(__name__)

CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
MAX_CODES_PER_WINDOW = 5
WINDOW = timedelta(minutes=15)
DIGITS = 6
PURPOSES = ("transfer", "login", "password_reset", "verify_email", "verify_phone")
CHANNELS = ("email", "sms", "in_app")
_PEPPER_LABEL = b"bankq one-time-code pepper v1"


@dataclass(frozen=True)
class IssuedCode:
    otp_id: str
    expires_at: datetime


class CodeRejected(ValidationFailed):
    """A wrong code (or a code for another operation). The attempt is counted in the session: commit it."""

    code, title = "invalid_code", "Invalid code"


def pepper(settings: Settings) -> bytes:
    if settings.otp_pepper:
        return settings.otp_pepper.encode()
    return hmac.new(settings.secret_key.encode(), _PEPPER_LABEL, hashlib.sha256).digest()


def code_hash(settings: Settings, otp_id: str, code: str) -> str:
    """What is stored: HMAC-SHA256(pepper, "otp_id:code"). A database dump alone cannot test guesses."""
    message = f"{otp_id}:{code}".encode("utf-8", "surrogatepass")
    return hmac.new(pepper(settings), message, hashlib.sha256).hexdigest()


def binding_digest(binding: str | None) -> str | None:
    """Bindings (what the code authorises, e.g. a transfer's amount and payee) are stored as SHA-256 hex."""
    return None if binding is None else hashlib.sha256(binding.encode("utf-8", "surrogatepass")).hexdigest()


def new_code() -> str:
    """Six digits: RFC 4226 HOTP over a fresh 160-bit random secret (pyotp draws it with `secrets`)."""
    return pyotp.HOTP(pyotp.random_base32(32), digits=DIGITS).at(0)


def _serialise_per_user(session: Session, user_id: str) -> None:
    """Concurrent issues for one user queue here, so the per-window count and superseding cannot race.
    (SQLite serialises every writer already.)"""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"otp:{user_id}"})


def _same_subject(subject_id: str | None) -> Any:
    return OneTimeCode.subject_id.is_(None) if subject_id is None else OneTimeCode.subject_id == subject_id


def issue_code(
    session: Session,
    settings: Settings,
    user: User,
    *,
    purpose: str,
    channel: str,
    subject_id: str | None = None,
    binding: str | None = None,
    template: str = "otp_code",
    context: dict[str, Any] | None = None,
) -> IssuedCode:
    """Issue a code and queue its message, in the caller's transaction. A new code supersedes the user's active
    code for the same purpose and subject. At most MAX_CODES_PER_WINDOW codes per user per WINDOW."""
    if purpose not in PURPOSES:
        raise ValidationFailed("Unknown purpose.", errors={"purpose": [f"Must be one of {', '.join(PURPOSES)}."]})
    if channel not in CHANNELS:
        raise ValidationFailed("Unknown channel.", errors={"channel": [f"Must be one of {', '.join(CHANNELS)}."]})
    now = utcnow()
    _serialise_per_user(session, user.id)
    recent = list(
        session.scalars(
            select(OneTimeCode.created_at)
            .where(OneTimeCode.user_id == user.id, OneTimeCode.created_at > now - WINDOW)
            .order_by(OneTimeCode.created_at)
        )
    )
    if len(recent) >= MAX_CODES_PER_WINDOW:
        frees_at = as_utc(recent[len(recent) - MAX_CODES_PER_WINDOW]) + WINDOW
        raise RateLimited(
            "Too many codes requested; try again later.",
            code="too_many_codes",
            retry_after=math.ceil((frees_at - now).total_seconds()),
        )
    session.execute(
        update(OneTimeCode)
        .where(
            OneTimeCode.user_id == user.id,
            OneTimeCode.purpose == purpose,
            OneTimeCode.status == "active",
            _same_subject(subject_id),
        )
        .values(status="superseded")
        .execution_options(synchronize_session="fetch")
    )
    code = new_code()
    otp = OneTimeCode(
        id=new_id(),
        user_id=user.id,
        purpose=purpose,
        channel=channel,
        subject_id=subject_id,
        binding=binding_digest(binding),
        status="active",
        attempts=0,
        expires_at=now + CODE_TTL,
        created_at=now,
    )
    otp.code_hash = code_hash(settings, otp.id, code)
    session.add(otp)
    queue_notification(
        session,
        user=user,
        channel=channel,
        template=template,
        context={
            **(context or {}),
            "code": code,
            "purpose": purpose,
            "expires_minutes": int(CODE_TTL.total_seconds() // 60),
        },
    )
    session.flush()
    log.info("otp: issued %s (%s by %s) for user %s", otp.id, purpose, channel, user.id)
    return IssuedCode(otp.id, as_utc(otp.expires_at))


def _check(session: Session, settings: Settings, otp: OneTimeCode, code: str, binding: str | None) -> None:
    now = utcnow()
    expires_at = as_utc(otp.expires_at)
    if otp.status == "blocked" or otp.attempts >= MAX_ATTEMPTS:
        left = math.ceil((expires_at - now).total_seconds())
        raise RateLimited(
            "Too many wrong codes; request a new one.", code="too_many_attempts", retry_after=left if left > 0 else 60
        )
    if otp.status != "active":
        raise Gone("This code is no longer valid; request a new one.", code="expired")
    if now >= expires_at:
        otp.status = "expired"
        session.flush()
        raise Gone("This code has expired; request a new one.", code="expired")
    given = code if isinstance(code, str) else ""
    right_code = hmac.compare_digest(otp.code_hash, code_hash(settings, otp.id, given))
    right_binding = hmac.compare_digest(otp.binding or "", binding_digest(binding) or "")
    if not (right_code and right_binding):
        otp.attempts += 1
        if otp.attempts >= MAX_ATTEMPTS:
            otp.status = "blocked"
        session.flush()
        remaining = MAX_ATTEMPTS - otp.attempts
        log.info("otp: wrong code for %s (%d attempts left)", otp.id, remaining)
        raise CodeRejected("The code is not correct.", extra={"attempts_remaining": remaining})
    otp.status, otp.used_at = "used", now
    session.flush()
    log.info("otp: %s used", otp.id)


def _locked(query: Any) -> Any:
    return query.with_for_update().execution_options(populate_existing=True)


def verify_code(
    session: Session, settings: Settings, user: User, otp_id: str, code: str, *, binding: str | None = None
) -> None:
    """Use up the code or raise: NotFound (not the user's), RateLimited too_many_attempts (blocked), Gone expired
    (expired, used or superseded), CodeRejected invalid_code with attempts_remaining. Commit before re-raising."""
    otp = None
    if isinstance(otp_id, str) and len(otp_id) <= 36:
        otp = session.scalar(_locked(select(OneTimeCode).where(OneTimeCode.id == otp_id)))
    if otp is None or otp.user_id != user.id:
        raise NotFound("No such code.", code="otp_not_found")
    _check(session, settings, otp, code, binding)


def verify_for_subject(
    session: Session,
    settings: Settings,
    user: User,
    *,
    purpose: str,
    subject_id: str | None,
    code: str,
    binding: str | None = None,
) -> None:
    """As verify_code, for the user's latest code for (purpose, subject): the active one if there is one."""
    otp = session.scalar(
        _locked(
            select(OneTimeCode)
            .where(OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose, _same_subject(subject_id))
            .order_by(
                case((OneTimeCode.status == "active", 0), (OneTimeCode.status == "superseded", 2), else_=1),
                OneTimeCode.created_at.desc(),
            )
            .limit(1)
        )
    )
    if otp is None:
        raise NotFound("No code was issued for this.", code="otp_not_found")
    _check(session, settings, otp, code, binding)


def verify_own_code(db: Database, settings: Settings, user: User, otp_id: str, code: str) -> None:
    """POST /otp/{id}/verify: a code the user asked for directly. Codes issued for an operation (with a subject
    or a binding) are verified by that operation, not here."""
    with db.transaction() as s:
        otp = s.get(OneTimeCode, otp_id) if isinstance(otp_id, str) and len(otp_id) <= 36 else None
        if otp is not None and (otp.subject_id is not None or otp.binding is not None):
            raise NotFound("No such code.", code="otp_not_found")
        try:
            verify_code(s, settings, user, otp_id, code)
        except BankqError as exc:
            raise Recorded(exc) from None


def request_code(
    db: Database, settings: Settings, user: User, *, purpose: str, channel: str, idempotency_key: str | None
) -> Accepted:
    """POST /otp as a job: the code is issued in the accepting transaction, so the job is born succeeded with
    {otp_id, expires_at}; sending is the notification's own job. A replay issues nothing new."""

    def create(s: Session) -> tuple[int, dict[str, Any], str | None]:
        code = issue_code(s, settings, user, purpose=purpose, channel=channel)
        job = jobs.new_job(
            s, kind="otp", user_id=user.id, resource_type="otp", resource_id=code.otp_id, job_id=new_id()
        )
        jobs.finish(job, "succeeded", result={"otp_id": code.otp_id, "expires_at": isoformat(code.expires_at)})
        s.flush()
        return 202, jobs.job_view(job), job.id

    return accept(
        db,
        user_id=user.id,
        key=idempotency_key,
        request_fingerprint=fingerprint("POST", "/api/v1/otp", {"purpose": purpose, "channel": channel}),
        create=create,
        ttl_seconds=settings.idempotency_ttl_seconds,
    )


__all__ = [
    "CODE_TTL",
    "MAX_ATTEMPTS",
    "MAX_CODES_PER_WINDOW",
    "WINDOW",
    "CodeRejected",
    "IssuedCode",
    "issue_code",
    "request_code",
    "verify_code",
    "verify_for_subject",
    "verify_own_code",
]


def purge_old_codes(db: Database, *, keep: timedelta = timedelta(days=1)) -> int:
    """Beat: codes are worthless once expired; keep a day of them for support questions, then delete."""
    from sqlalchemy import delete

    with db.transaction() as s:
        result = s.execute(delete(OneTimeCode).where(OneTimeCode.expires_at < utcnow() - keep))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
