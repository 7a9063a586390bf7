"""Idempotency keys: one accepted request per (user, key), stored in the same transaction as its job."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, delete, func, select, text, true
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


@dataclass(frozen=True)
class ReadAlongside:
    """A read that accepting the request makes anyway (a transfer's accounts), made on PostgreSQL in the statement
    that locks and looks up the key: one round trip fewer per accept. `query` is a prebuilt Core select (the
    combined statement is built once per query; its first column is never NULL), `params` its parameters (their
    names apart from the look-up's: lock, user_id, key). While `create` runs, `read_alongside` gives its rows to
    whoever asks for the same read; on SQLite it is not made here, and whoever needs it reads it as before."""

    query: Select[Any]
    params: dict[str, Any]


def read_alongside(session: Session, query: Select[Any], params: dict[str, Any]) -> list[Any] | None:
    """The rows of this read if the accept running in `session` made it with its key's look-up, else None."""
    made = session.info.get(_ALONGSIDE)
    if made is None or made[0].query is not query or made[0].params != params:
        return None
    return made[1]  # type: ignore[no-any-return]


_ALONGSIDE = "bankq.accept.read_alongside"
_WITH_ALONGSIDE: dict[Select[Any], tuple[Any, int]] = {}


def _lock_look_up_and(query: Select[Any]) -> tuple[Any, int]:
    """_LOCK_AND_LOOK_UP's one row, each of `query`'s rows beside it (or NULLs when it has none), and the number
    of the look-up's columns."""
    combined = _WITH_ALONGSIDE.get(query)
    if combined is None:
        looked_up, alongside = _LOCK_AND_LOOK_UP.subquery("looked_up"), query.subquery("alongside")
        statement = select(looked_up, alongside).select_from(looked_up.outerjoin(alongside, true()))
        combined = _WITH_ALONGSIDE[query] = (statement, len(looked_up.c))
    return combined


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
    alongside: ReadAlongside | None = None,
) -> Accepted:
    """Run `create` once per (user, key). `create` writes the job, its resource and its outbox row.

    With `session`, the request is accepted inside the caller's transaction (a savepoint of it), so it commits
    or rolls back with whatever else the caller writes; a beat tick uses that to make one occurrence row and
    its transfer one unit."""
    key = check_key(key)
    if session is not None:
        with session.begin_nested():
            return _accept_in(db, session, user_id, key, request_fingerprint, create, ttl_seconds, alongside)
    for _ in range(3):
        try:
            return _accept_once(db, user_id, key, request_fingerprint, create, ttl_seconds, alongside)
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
    alongside: ReadAlongside | None,
) -> Accepted:
    with db.transaction() as s:
        return _accept_in(db, s, user_id, key, fp, create, ttl, alongside)


def _accept_in(
    db: Database,
    s: Session,
    user_id: str,
    key: str,
    fp: str,
    create: Callable[[Session], tuple[int, dict[str, Any], str | None]],
    ttl: int,
    alongside: ReadAlongside | None = None,
) -> Accepted:
    now = utcnow()
    got, existing = _lock_and_look_up(db, s, user_id, key, alongside)
    try:
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
    finally:
        s.info.pop(_ALONGSIDE, None)  # read for this accept only: never handed to a later reader of the session


def _lock_and_look_up(
    db: Database, s: Session, user_id: str, key: str, alongside: ReadAlongside | None = None
) -> tuple[bool, Any]:
    """(whether this request may go on, the stored answer for the key or None), in one round trip. On PostgreSQL
    the key's advisory lock is taken in the same statement: a second request with the key while the first is
    being accepted is told so (409) rather than made to wait. SQLite serialises writers anyway."""
    if db.is_postgres:
        lookup = {"lock": f"idem:{user_id}:{key}", "user_id": user_id, "key": key}
        if alongside is None:
            row = s.connection().execute(_LOCK_AND_LOOK_UP, lookup).one()
        else:
            statement, width = _lock_look_up_and(alongside.query)
            rows = s.connection().execute(statement, {**alongside.params, **lookup}).all()
            row = rows[0]
            s.info[_ALONGSIDE] = (alongside, [r[width:] for r in rows if r[width] is not None])  # NULLs: none found
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
