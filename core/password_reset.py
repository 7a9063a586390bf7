"""Password reset by an emailed one-time code, answering alike whether or not an address has an account.

Nothing a caller sees depends on whether the address is registered: the request always succeeds silently (and
takes at least MIN_SECONDS either way), and for an address without an account (or without a code) a *decoy*
plays the part of the code: it counts wrong attempts, blocks after five and expires, exactly like a real code,
so attempts_remaining, the 429 and the 410 cannot tell the two apart either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import select

from core import audit, otp
from core.clock import as_utc, utcnow
from core.db import Database, Recorded
from core.errors import BankqError, Gone, NotFound, RateLimited
from core.models import User
from core.security import check_password_strength, hash_password
from core.settings import Settings

log = logging.getLogger(__name__)
# Both answers take at least this long, so timing does not tell a registered address from an unknown one.
MIN_SECONDS = 0.3
DECOY_TTL_SECONDS = 24 * 3600


def request_reset(db: Database, settings: Settings, email: str) -> None:
    """Email a reset code if the address belongs to an active account."""
    started = time.monotonic()
    address = email.strip().lower()
    try:
        with db.transaction() as s:
            user = s.scalar(select(User).where(User.email == address))
            if user is not None and user.status == "active":
                try:
                    otp.issue_code(
                        s, settings, user, purpose="password_reset", channel="email", template="password_reset"
                    )
                except RateLimited:
                    log.info("password reset: too many codes for user %s; none sent", user.id)
                else:
                    audit.record(s, None, "user.password_reset_requested", f"user:{user.id}")
            else:
                decoys.issue(settings, address)
    finally:
        _pad(started)


def confirm_reset(db: Database, settings: Settings, email: str, code: str, new_password: str) -> None:
    """Set a new password with the emailed code. Every existing token of the user stops working."""
    started = time.monotonic()
    address = email.strip().lower()
    try:
        check_password_strength(new_password, field="new_password")
        with db.transaction() as s:
            user = s.scalar(select(User).where(User.email == address).with_for_update())
            try:
                if user is None or user.status != "active":
                    raise NotFound()
                otp.verify_for_subject(s, settings, user, purpose="password_reset", subject_id=None, code=code)
            except NotFound:
                raise decoys.attempt(settings, address) from None
            except BankqError as exc:
                raise Recorded(exc) from None  # a wrong code's attempt must count
            # Raising here rolls the code back to unused: a password the owner must change anyway.
            check_password_strength(new_password, field="new_password", username=user.username)
            user.password_hash = hash_password(new_password)
            user.token_version += 1
            user.failed_logins, user.locked_until = 0, None
            audit.record(s, user.id, "user.password_reset", f"user:{user.id}")
    finally:
        _pad(started)


def _pad(started: float) -> None:
    left = MIN_SECONDS - (time.monotonic() - started)
    if left > 0:
        time.sleep(left)


class Decoys:
    """The stand-in for a code, per address without one: {issued: [times], attempts, status, expires_at}.
    Kept in Redis when there is one (every API process sees the same), else in this process."""

    def __init__(self) -> None:
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def issue(self, settings: Settings, address: str) -> None:
        key, now = self._key(settings, address), utcnow()
        state = self._load(settings, key) or {"issued": [], "attempts": 0, "status": "none", "expires_at": None}
        recent = [t for t in state["issued"] if datetime.fromisoformat(t) > now - otp.WINDOW]
        if len(recent) >= otp.MAX_CODES_PER_WINDOW:
            return  # a real account would get no new code either
        recent.append(now.isoformat())
        state = {"issued": recent, "attempts": 0, "status": "active", "expires_at": (now + otp.CODE_TTL).isoformat()}
        self._save(settings, key, state)

    def attempt(self, settings: Settings, address: str) -> BankqError:
        """What a wrong code would get; the decoy's counters move like a real code's."""
        key, now = self._key(settings, address), utcnow()
        state = self._load(settings, key)
        if state is None or state["status"] == "none":
            return Gone("This code is no longer valid; request a new one.", code="expired")
        expires_at = as_utc(datetime.fromisoformat(state["expires_at"]))
        if state["status"] == "blocked":
            left = math.ceil((expires_at - now).total_seconds())
            return RateLimited(
                "Too many wrong codes; request a new one.",
                code="too_many_attempts",
                retry_after=left if left > 0 else 60,
            )
        if state["status"] != "active":
            return Gone("This code is no longer valid; request a new one.", code="expired")
        if now >= expires_at:
            self._save(settings, key, {**state, "status": "expired"})
            return Gone("This code has expired; request a new one.", code="expired")
        attempts = state["attempts"] + 1
        status = "blocked" if attempts >= otp.MAX_ATTEMPTS else "active"
        self._save(settings, key, {**state, "attempts": attempts, "status": status})
        return otp.CodeRejected("The code is not correct.", extra={"attempts_remaining": otp.MAX_ATTEMPTS - attempts})

    @staticmethod
    def _key(settings: Settings, address: str) -> str:
        digest = hmac.new(otp.pepper(settings), f"reset-decoy:{address}".encode(), hashlib.sha256).hexdigest()
        return f"bankq:reset-decoy:{digest}"

    def _redis(self, settings: Settings) -> Any:
        if not settings.redis_url:
            return None
        client = self._clients.get(settings.redis_url)
        if client is None:
            import redis

            client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=1)
            self._clients[settings.redis_url] = client
        return client

    def _load(self, settings: Settings, key: str) -> dict[str, Any] | None:
        client = self._redis(settings)
        raw: Any = None
        if client is not None:
            try:
                raw = client.get(key)
            except Exception as exc:  # Redis down: this process's memory stands in
                log.warning("password reset: decoy store unavailable (%s); using memory", type(exc).__name__)
                client = None
        if client is None:
            with self._lock:
                raw = self._memory.get(key)
        return json.loads(raw) if raw else None

    def _save(self, settings: Settings, key: str, state: dict[str, Any]) -> None:
        raw = json.dumps(state)
        client = self._redis(settings)
        if client is not None:
            try:
                client.set(key, raw, ex=DECOY_TTL_SECONDS)
                return
            except Exception as exc:
                log.warning("password reset: decoy store unavailable (%s); using memory", type(exc).__name__)
        with self._lock:
            if len(self._memory) > 100_000:
                self._memory.clear()
            self._memory[key] = raw


decoys = Decoys()
