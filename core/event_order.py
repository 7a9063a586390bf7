"""The order in which job events become final.

Event ids come from a sequence when a transaction writes, not when it commits. Whoever reads job_events "after id
N" (an event stream resuming from Last-Event-ID, the webhook fan-out's cursor) must only move past ids that can no
longer be filled in by a transaction still in progress: `Horizon.settled()` is the highest such id, and
`Horizon.final` reads events after a cursor and keeps those no id still to commit can come before."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from sqlalchemy import text

from core.db import Database

log = logging.getLogger(__name__)
_TOP = text("SELECT coalesce(max(id), 0) FROM job_events")
# The highest visible id and the transactions writing job events now. pg_locks is read after the statement's
# snapshot was taken, so every transaction that took an id below the top and had not committed by then is listed:
# a transaction locks the table (RowExclusiveLock, held to its end) before the insert takes an id from the sequence.
_TOP_AND_WRITERS = text(
    "SELECT (SELECT coalesce(max(id), 0) FROM job_events), coalesce(array_agg(l.virtualtransaction), '{}') "
    "FROM pg_locks l WHERE l.locktype = 'relation' AND l.relation = 'job_events'::regclass "
    "AND l.mode = 'RowExclusiveLock'"
)
# Which of these writers are still open: a virtual transaction holds the lock on its own id until it ends, and its id
# is never reused.
_STILL_OPEN = text(
    "SELECT coalesce(array_agg(virtualxid), '{}') FROM pg_locks WHERE locktype = 'virtualxid' "
    "AND virtualxid = ANY(CAST(:writers AS text[]))"
)


class _Numbered(Protocol):  # a job event, as a stream's Event or as the JobEvent row
    @property
    def id(self) -> int: ...


E = TypeVar("E", bound=_Numbered)


class Horizon:
    """The highest job_events id at or below which no event can still appear.

    Ids come from a sequence when a transaction writes, not when it commits: on PostgreSQL a transaction holding
    id 10 may commit after one holding id 11. A stream that sent 11 and then resumed "after 11" would never send
    10. Every transaction holding an id below the highest visible one was writing job events when that was seen,
    so once all the writers seen then have ended, every id up to it is final. Only writers of job events count:
    a long transaction elsewhere (a webhook attempt being recorded, a report) holds nobody back. SQLite serialises
    writers, so there ids commit in order. One horizon serves every stream of a process.

    A transaction that wrote a job event and was then left open (idle in transaction) would hold every stream of
    the process back for ever, so writers still open after patience_seconds count as ended, with a warning: events
    are written by short transactions, and only one that took an event id and then stayed open that long could be
    skipped."""

    def __init__(self, db: Database, *, reuse_seconds: float = 0.01, patience_seconds: float = 5.0) -> None:
        self.db = db
        self._reuse = reuse_seconds
        self._patience = patience_seconds
        self._lock = threading.Lock()
        self._value = 0
        self._checked = -1.0e9
        # (highest visible id, the writers open when it was seen, seen at), oldest first
        self._pending: list[tuple[int, list[str], float]] = []

    def settled(self) -> int:
        if not self.db.is_postgres:
            return sys.maxsize
        with self._lock:
            if time.monotonic() - self._checked < self._reuse:
                return self._value
            with self.db.statement() as conn:
                if self._pending:
                    asked = list({w for _, writers, _ in self._pending for w in writers})
                    still_open = set(conn.execute(_STILL_OPEN, {"writers": asked}).scalar() or ())
                    now = time.monotonic()
                    for i in range(len(self._pending) - 1, -1, -1):  # a settled top settles every older one
                        top, writers, taken = self._pending[i]
                        overdue = now - taken > self._patience
                        if overdue or still_open.isdisjoint(writers):
                            if overdue and not still_open.isdisjoint(writers):
                                log.warning("event horizon: a transaction writing job events (one of %s) is open "
                                            "after %.0f s; sending events up to id %s without waiting for it",
                                            sorted(still_open & set(writers)), self._patience, top)
                            self._value = max(self._value, top)
                            del self._pending[: i + 1]
                            break
                top, writers = conn.execute(_TOP_AND_WRITERS).one()
            if not writers:  # nobody is writing job events: all up to top is final already
                self._value, self._pending = max(self._value, top), []
            elif top > self._value:
                # Bounded, and the oldest is kept: patience counts from when the horizon first stopped moving. (Were
                # the oldest dropped, a reader asking often would never see a top grow overdue.)
                self._pending = [*self._pending[:1], *self._pending[-30:], (top, list(writers), time.monotonic())]
            self._checked = time.monotonic()
            return self._value

    def final(self, cursor: int, read: Callable[[], Sequence[E]], *,
              wait_seconds: float = 0.0) -> tuple[Sequence[E], list[E]]:
        """What `read` returns (events after cursor, in id order), and those of them that are final. The horizon
        worked out last is enough while no gap reaches above it. After such a gap the horizon is asked afresh, for
        up to wait_seconds until it covers the gap (the writers open now have ended), and the events are read
        again, after it (see final_prefix): meanwhile the gap may also have filled in."""
        known = self._value if self.db.is_postgres else sys.maxsize  # still true: ids only ever become final
        events = read()
        ready = final_prefix(events, cursor, known)
        if len(ready) < len(events):
            below_gap, deadline = events[len(ready)].id - 1, time.monotonic() + wait_seconds
            settled = self.settled()
            while settled < below_gap and time.monotonic() < deadline:
                time.sleep(self._reuse)
                settled = self.settled()
            events = read()
            ready = final_prefix(events, cursor, settled)
        return events, ready

    def current(self, *, step: float = 0.01) -> int:
        """A horizon at least as high as every id written before this call, waiting (briefly: the transactions in
        flight now must end, or be given up on after patience_seconds) until the horizon gets there. For a reader
        that starts following now and must not begin from a horizon taken long ago."""
        with self.db.statement() as conn:
            top = int(conn.execute(_TOP).scalar() or 0)
        if not self.db.is_postgres:
            return top
        deadline = time.monotonic() + self._patience + 1.0
        while True:
            value = self.settled()
            if value >= top or time.monotonic() >= deadline:
                return value
            time.sleep(step)


def final_prefix(events: Sequence[E], cursor: int, settled: int) -> list[E]:
    """The events (read after cursor, in id order) that no id still to commit can come before: up to the first gap
    that reaches above the horizon `settled`, which must have been taken before the read. An id between the cursor
    and an event is either among those read, under the horizon, or still to come: a gap above the horizon may be a
    transaction still writing (it fills in when that commits) or one that rolled back (only the horizon says so)."""
    ready, last = [], cursor
    for event in events:
        if event.id != last + 1 and event.id - 1 > settled:
            break
        ready.append(event)
        last = event.id
    return ready
