"""Following job events as they happen: replay after a given event id, then wait for wake-ups (or poll) and read
again. Transport-free: the API turns what `follow` yields into Server-Sent Events."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import text

from core.db import Database
from core.event_wakeups import WakeupHub
from core.events import Event, events_of
from core.jobs import TERMINAL, visible_job
from core.models import User

log = logging.getLogger(__name__)
BATCH = 500
_TOP_AND_SNAPSHOT = text("SELECT (SELECT coalesce(max(id), 0) FROM job_events), pg_current_snapshot()::text")
_SNAPSHOT_DONE = text(
    "SELECT NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(CAST(:snapshot AS pg_snapshot)) AS x "
    "WHERE pg_xact_status(x) = 'in progress')"
)


class Horizon:
    """The highest job_events id at or below which no event can still appear.

    Ids come from a sequence when a transaction writes, not when it commits: on PostgreSQL a transaction holding
    id 10 may commit after one holding id 11. A stream that sent 11 and then resumed "after 11" would never send
    10. Every transaction holding an id below the highest visible one was in progress when that was seen, so once
    all of that snapshot's in-progress transactions have ended, every id up to it is final. SQLite serialises
    writers, so there ids commit in order. One horizon serves every stream of a process.

    A transaction left open (idle in transaction) would hold every stream of the process back for ever, so a
    snapshot still unsettled after patience_seconds counts as settled, with a warning: events are written by short
    transactions, and only one that took an event id and then stayed open that long could be skipped."""

    def __init__(self, db: Database, *, reuse_seconds: float = 0.01, patience_seconds: float = 5.0) -> None:
        self.db = db
        self._reuse = reuse_seconds
        self._patience = patience_seconds
        self._lock = threading.Lock()
        self._value = 0
        self._checked = -1.0e9
        self._pending: list[tuple[int, str, float]] = []  # (highest visible id, snapshot, taken at), oldest first

    def settled(self) -> int:
        if not self.db.is_postgres:
            return sys.maxsize
        with self._lock:
            if time.monotonic() - self._checked < self._reuse:
                return self._value
            with self.db.statement() as conn:
                for i in range(len(self._pending) - 1, -1, -1):  # a settled snapshot settles every older one
                    top, snapshot, taken = self._pending[i]
                    overdue = time.monotonic() - taken > self._patience
                    if overdue or conn.execute(_SNAPSHOT_DONE, {"snapshot": snapshot}).scalar():
                        if overdue:
                            log.warning("event horizon: a transaction of snapshot %s is open after %.0f s; "
                                        "sending events up to id %s without waiting for it", snapshot,
                                        self._patience, top)
                        self._value = max(self._value, top)
                        del self._pending[: i + 1]
                        break
                top, snapshot = conn.execute(_TOP_AND_SNAPSHOT).one()
            if snapshot.rsplit(":", 1)[1] == "":  # no transaction in progress: all up to top is final already
                self._value, self._pending = max(self._value, top), []
            elif top > self._value:
                self._pending = [*self._pending[-31:], (top, snapshot, time.monotonic())]
            self._checked = time.monotonic()
            return self._value


@dataclass(frozen=True)
class StreamTiming:
    poll_seconds: float  # fallback re-read when no wake-up came
    keepalive_seconds: float  # longest silence before a keep-alive (None is yielded)
    settle_seconds: float = 0.02  # re-read this soon while later events wait for the horizon


@dataclass(frozen=True)
class JobStream:
    owner_id: str
    terminal: bool


def open_job_stream(db: Database, user: User, job_id: str) -> JobStream:
    """The job's owner (whose events the stream reads) under GET /jobs/{id}'s visibility rule; NotFound otherwise."""
    with db.transaction() as s:
        job = visible_job(s, user, job_id)
        return JobStream(job.user_id, job.status in TERMINAL)


def follow(
    db: Database,
    hub: WakeupHub,
    horizon: Horizon,
    owner_id: str,
    after_id: int,
    *,
    timing: StreamTiming,
    authorised: Callable[[], bool],
    job_id: str | None = None,
    job_terminal: bool = False,
) -> Iterator[Event | None]:
    """Events of owner_id's jobs (of job_id only, when given) after after_id, oldest first, as they happen; None
    whenever keepalive_seconds passed without anything sent. Ends after a job stream's terminal event (at once
    after the replay if the job was already terminal), when the hub closes, or when `authorised()` says no."""
    with hub.subscribe(owner_id) as bell:
        last_sent = time.monotonic()
        while True:
            # One job's changes are serialised by its row lock, so its ids commit in order: no horizon needed.
            # The horizon is fixed before the read: every id up to it had committed by then, so the read sees them
            # all. Read first and an id below it could still have been in flight during the read, and be skipped.
            limit = sys.maxsize if job_id is not None else horizon.settled()
            events = events_of(db, owner_id, after_id, job_id=job_id, limit=BATCH)
            ready = [e for e in events if e.id <= limit]
            waiting = len(ready) < len(events)
            for event in ready:
                yield event
                after_id = event.id
                if job_id is not None and event.status in TERMINAL:
                    return
            if job_terminal and len(events) < BATCH:
                return
            now = time.monotonic()
            if ready:
                last_sent = now
                if len(events) == BATCH and not waiting:
                    continue
            if bell.closed or not authorised():
                return
            if now - last_sent >= timing.keepalive_seconds:
                yield None
                last_sent = now
            pause = timing.settle_seconds if waiting else timing.poll_seconds
            bell.wait(min(pause, timing.keepalive_seconds - (now - last_sent)))
