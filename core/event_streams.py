"""Following job events as they happen. Transport-free: the API turns what `follow` yields into Server-Sent Events.

One reader per process, the tail, reads every new final event (ids up to the horizon, `core.event_order`) once and
hands each to the open streams of its owner. A thousand open streams therefore cost one query per wake-up, not a
thousand. A stream replays what it missed (after its Last-Event-ID) from PostgreSQL, up to the position the tail had
reached when the stream subscribed; everything after that position reaches it through the tail, in id order.

A stream whose client reads too slowly to keep up is cut loose from the tail when its inbox is full: it then reads
from PostgreSQL again, from its last sent event, and subscribes anew. Nothing is skipped; a slow client only costs
queries of its own."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.db import Database
from core.event_order import Horizon
from core.event_wakeups import WakeupHub
from core.events import Event, events_of, events_since
from core.jobs import TERMINAL, visible_job
from core.models import User

log = logging.getLogger(__name__)
BATCH = 500
AWAKE_SECONDS = 5.0  # a waiting stream looks at least this often whether its token still holds


@dataclass(frozen=True)
class StreamTiming:
    poll_seconds: float  # the tail's fallback re-read when no wake-up came
    keepalive_seconds: float  # longest silence before a keep-alive (None is yielded)
    settle_seconds: float = 0.02  # the tail re-reads this soon while later events wait for the horizon
    inbox: int = 2000  # events a stream may have waiting before it is cut loose and re-reads from the database


class Inbox:
    """One stream's share of the tail: its owner's events after `start`, in id order."""

    def __init__(self, owner_id: str, start: int, capacity: int) -> None:
        self.owner_id = owner_id
        self.start = start
        self._capacity = capacity
        self._events: deque[Event] = deque()
        self._ready = threading.Event()
        self.overflowed = False

    def put(self, event: Event) -> bool:
        """The tail hands over an event; False when the inbox is full (and is then left behind for good)."""
        if len(self._events) >= self._capacity:
            self.overflowed = True
            self._events.clear()
            self._ready.set()
            return False
        self._events.append(event)
        self._ready.set()
        return True

    def ring(self) -> None:
        self._ready.set()

    def take(self, seconds: float) -> list[Event]:
        """What has arrived, waiting up to `seconds` for something (or a ring) when nothing has."""
        if not self._events:
            self._ready.wait(max(0.0, seconds))
        self._ready.clear()
        taken = []
        while self._events:
            taken.append(self._events.popleft())
        return taken


class EventTail:
    """The process's one reader of new job events. Runs while at least one stream is subscribed: the first
    subscriber starts it from the horizon as it is now, and it stops when the last one leaves."""

    def __init__(self, db: Database, hub: WakeupHub, horizon: Horizon, timing: StreamTiming) -> None:
        self.db = db
        self.hub = hub
        self.horizon = horizon
        self.timing = timing
        self._lock = threading.Lock()
        self._inboxes: dict[str, set[Inbox]] = {}
        self._cursor: int | None = None
        self._thread: threading.Thread | None = None

    @property
    def closed(self) -> bool:
        return self.hub.closed

    @contextmanager
    def subscribe(self, owner_id: str) -> Iterator[Inbox]:
        with self._lock:
            if self._cursor is None:
                self._cursor = self.horizon.current()
            inbox = Inbox(owner_id, self._cursor, self.timing.inbox)
            self._inboxes.setdefault(owner_id, set()).add(inbox)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bankq-event-tail", daemon=True)
                self._thread.start()
        try:
            yield inbox
        finally:
            with self._lock:
                self._drop(inbox)

    def ring_all(self) -> None:
        with self._lock:
            inboxes = [i for group in self._inboxes.values() for i in group]
        for inbox in inboxes:
            inbox.ring()

    def _drop(self, inbox: Inbox) -> None:
        group = self._inboxes.get(inbox.owner_id)
        if group is not None:
            group.discard(inbox)
            if not group:
                del self._inboxes[inbox.owner_id]

    def _run(self) -> None:
        try:
            with self.hub.subscribe() as bell:
                while not self.closed:
                    with self._lock:
                        if not self._inboxes:  # nobody left: stop; the next subscriber starts afresh
                            self._cursor, self._thread = None, None
                            return
                        cursor = self._cursor
                    assert cursor is not None
                    waiting, full = self._read(cursor)
                    if full:
                        continue
                    bell.wait(self.timing.settle_seconds if waiting else self.timing.poll_seconds)
                    time.sleep(self.timing.settle_seconds)  # let a burst of commits arrive: one read for all
        except Exception as exc:
            log.warning("event tail: reading job events failed (%s); open streams read from the database again",
                        exc)
            with self._lock:
                self._cursor, self._thread = None, None
                broken = [i for group in self._inboxes.values() for i in group]
                self._inboxes.clear()
            for inbox in broken:
                inbox.overflowed = True  # their streams re-read from the database and subscribe anew
                inbox.ring()
        finally:
            if self.closed:
                self.ring_all()

    def _read(self, cursor: int) -> tuple[bool, bool]:
        """Hand out the final events after cursor (Horizon.final): with no gap in the ids, the usual case, at once.
        Returns (later events wait for a gap to fill, a full batch was read)."""
        events, ready = self.horizon.final(cursor, lambda: events_since(self.db, cursor, limit=BATCH))
        with self._lock:
            for event in ready:
                for inbox in list(self._inboxes.get(event.owner_id, ())):
                    if not inbox.put(event):
                        self._drop(inbox)
            if ready:
                self._cursor = ready[-1].id
        gap = len(ready) < len(events)
        return gap, len(events) == BATCH and not gap


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
    tail: EventTail,
    owner_id: str,
    after_id: int,
    *,
    authorised: Callable[[], bool],
    job_id: str | None = None,
    job_terminal: bool = False,
) -> Iterator[Event | None]:
    """Events of owner_id's jobs (of job_id only, when given) after after_id, oldest first, as they happen; None
    whenever keepalive_seconds passed without anything sent. Ends after a job stream's terminal event (at once
    after the replay if the job was already terminal), when the tail closes, or when `authorised()` says no."""
    db, keepalive = tail.db, tail.timing.keepalive_seconds
    if job_terminal:
        # A finished job gets no more events, and one job's ids commit in order (its row lock): replay and end.
        while True:
            events = events_of(db, owner_id, after_id, job_id=job_id, limit=BATCH)
            yield from events
            if len(events) < BATCH:
                return
            after_id = events[-1].id
    last_sent = time.monotonic()
    while True:
        with tail.subscribe(owner_id) as inbox:
            while after_id < inbox.start:  # what the client missed, up to where the tail took over
                events = events_of(db, owner_id, after_id, job_id=job_id, limit=BATCH, up_to=inbox.start)
                for event in events:
                    yield event
                    last_sent = time.monotonic()
                    if job_id is not None and event.status in TERMINAL:
                        return
                after_id = events[-1].id if len(events) == BATCH else inbox.start
            while not inbox.overflowed:
                if tail.closed or not authorised():
                    return
                silence = time.monotonic() - last_sent
                for event in inbox.take(min(keepalive - silence, AWAKE_SECONDS)):
                    if event.id <= after_id or (job_id is not None and event.job_id != job_id):
                        continue
                    yield event
                    after_id, last_sent = event.id, time.monotonic()
                    if job_id is not None and event.status in TERMINAL:
                        return
                if time.monotonic() - last_sent >= keepalive:
                    yield None
                    last_sent = time.monotonic()
        log.info("event stream of %s fell behind the tail; reading from the database after %s", owner_id, after_id)
