"""The order in which job events become final.

Event ids come from a sequence when a transaction writes, not when it commits. Whoever reads job_events "after id
N" (an event stream resuming from Last-Event-ID, the webhook fan-out's cursor) must only move past ids that can no
longer be filled in by a transaction still in progress: `Horizon.settled()` is the highest such id."""

from __future__ import annotations

import logging
import sys
import threading
import time

from sqlalchemy import text

from core.db import Database

log = logging.getLogger(__name__)
_TOP = text("SELECT coalesce(max(id), 0) FROM job_events")
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
                # Bounded, and the oldest is kept: patience counts from when the horizon first stopped moving. (Were
                # the oldest dropped, a reader asking often would never see a snapshot grow overdue.)
                self._pending = [*self._pending[:1], *self._pending[-30:], (top, snapshot, time.monotonic())]
            self._checked = time.monotonic()
            return self._value

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
