"""Idempotency keys: one accepted request per (user, key), stored in the same transaction as its job."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import as_utc, utcnow
from core.db import Database, insert_queued, queue_insert
from core.errors import BadRequest, Conflict, ValidationFailed
from core.models import IdempotencyKey

KEYS = cast(Table, IdempotencyKey.__table__)
_STORED = (KEYS.c.fingerprint, KEYS.c.response_status, KEYS.c.response_body, KEYS.c.expires_at)
_LOOK_UP = select(*_STORED).where(KEYS.c.user_id == bindparam("user_id"), KEYS.c.key == bindparam("key"))
_LOCK_AND_LOOK_UP = (
    select(func.pg_try_advisory_xact_lock(func.hashtextextended(bindparam("lock"), 0)).label("got"), *_STORED)
    .select_from(text("(SELECT 1) AS one"))
    .outerjoin(KEYS, (KEYS.c.user_id == bindparam("user_id")) & (KEYS.c.key == bindparam("key")))
)


@dataclass
class Accepted:
    status: int
    body: dict[str, Any]
    replayed: bool


def check_key(key: str | None) -> str:
    if key is None or key == "":
        raise BadRequest("The Idempotency-Key header is required.", code="idempotency_key_required")
    if len(key) > 255 or not all(0x20 < ord(c) < 0x7F for c in key):
        raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters.", code="idempotency_key_invalid")
    return key


def fingerprint(method: str, path: str, body: Any) -> str:
    """Same request, same fingerprint: key order and whitespace do not matter, values do."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def accept(
    db: Database,
    *,
    user_id: str,
    key: str | None,
    request_fingerprint: str,
    create: Callable[[Session], tuple[int, dict[str, Any], str | None]],
    ttl_seconds: int,
    session: Session | None = None,
) -> Accepted:
    """Run `create` once per (user, key). `create` writes the job, its resource and its outbox row.

    With `session`, the request is accepted inside the caller's transaction (a savepoint of it), so it commits
    or rolls back with whatever else the caller writes; a beat tick uses that to make one occurrence row and
    its transfer one unit."""
    key = check_key(key)
    if session is not None:
        with session.begin_nested():
            return _accept_in(db, session, user_id, key, request_fingerprint, create, ttl_seconds)
    for _ in range(3):
        try:
            return _accept_once(db, user_id, key, request_fingerprint, create, ttl_seconds)
        except IntegrityError as exc:
            if "idempotency" not in str(exc.orig).lower():
                raise
            # Another request with this key committed between our look-up and our insert: replay it.
    raise Conflict("The request with this Idempotency-Key is still being accepted.", code="idempotency_key_in_use")


def _accept_once(
    db: Database,
    user_id: str,
    key: str,
    fp: str,
    create: Callable[[Session], tuple[int, dict[str, Any], str | None]],
    ttl: int,
) -> Accepted:
    with db.transaction() as s:
        return _accept_in(db, s, user_id, key, fp, create, ttl)


def _accept_in(
    db: Database,
    s: Session,
    user_id: str,
    key: str,
    fp: str,
    create: Callable[[Session], tuple[int, dict[str, Any], str | None]],
    ttl: int,
) -> Accepted:
    now = utcnow()
    got, existing = _lock_and_look_up(db, s, user_id, key)
    if not got:
        raise Conflict(
            "A request with this Idempotency-Key is still being accepted.",
            code="idempotency_key_in_use",
            headers={"Retry-After": "1"},
        )
    if existing is not None and as_utc(existing.expires_at) <= now:
        s.execute(delete(KEYS).where(KEYS.c.user_id == user_id, KEYS.c.key == key))
        existing = None
    if existing is not None:
        if existing.fingerprint != fp:
            raise ValidationFailed(
                "This Idempotency-Key was used with a different request.", code="idempotency_key_reused"
            )
        return Accepted(existing.response_status, existing.response_body, replayed=True)
    status, body, job_id = create(s)
    queue_insert(s, KEYS, {
        "user_id": user_id, "key": key, "fingerprint": fp, "response_status": status, "response_body": body,
        "job_id": job_id, "created_at": now, "expires_at": now + timedelta(seconds=ttl),
    })
    insert_queued(s)  # with whatever `create` queued: on PostgreSQL one statement
    return Accepted(status, body, replayed=False)


def _lock_and_look_up(db: Database, s: Session, user_id: str, key: str) -> tuple[bool, Any]:
    """(whether this request may go on, the stored answer for the key or None), in one round trip. On PostgreSQL
    the key's advisory lock is taken in the same statement: a second request with the key while the first is
    being accepted is told so (409) rather than made to wait. SQLite serialises writers anyway."""
    if db.is_postgres:
        lookup = {"lock": f"idem:{user_id}:{key}", "user_id": user_id, "key": key}
        row = s.connection().execute(_LOCK_AND_LOOK_UP, lookup).one()
        return bool(row.got), row if row.fingerprint is not None else None
    return True, s.connection().execute(_LOOK_UP, {"user_id": user_id, "key": key}).first()


def purge_expired(db: Database) -> int:
    with db.transaction() as s:
        result = s.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.expires_at < func.now() if db.is_postgres else IdempotencyKey.expires_at < utcnow()
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
