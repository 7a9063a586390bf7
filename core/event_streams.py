"""Following job events as they happen: replay after a given event id, then wait for wake-ups (or poll) and read
again. Transport-free: the API turns what `follow` yields into Server-Sent Events."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from core.db import Database
from core.event_order import Horizon
from core.event_wakeups import WakeupHub
from core.events import Event, events_of
from core.jobs import TERMINAL, visible_job
from core.models import User

log = logging.getLogger(__name__)
BATCH = 500
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
