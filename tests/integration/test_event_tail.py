"""The event tail on real PostgreSQL: one reader hands every final event to every open stream of its owner, in id
order; a stream too slow for its inbox reads from the database instead and still misses nothing; a client that
resumes from an id the tail has not reached gets no duplicate; the tail stops with its last stream."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from core import jobs
from core.bank import Bank
from core.event_order import Horizon
from core.event_streams import EventTail, StreamTiming, follow
from core.event_wakeups import WakeupHub
from core.events import Event, events_after
from core.models import Job
from tests.support import make_user, rolled_back_job


@pytest.fixture
def tail(bank: Bank) -> Iterator[EventTail]:
    hub = WakeupHub(bank.settings.redis_url)
    tail = EventTail(bank.db, hub, Horizon(bank.db), StreamTiming(poll_seconds=1.0, keepalive_seconds=30, inbox=5))
    yield tail
    hub.close()


def new_jobs(bank: Bank, user_id: str, n: int) -> list[str]:
    with bank.db.transaction() as s:
        made = [jobs.new_job(s, kind="transfer", user_id=user_id, resource_type="transfer", resource_id=f"t-{i}")
                for i in range(n)]
        s.flush()
        return [j.id for j in made]


def finish(bank: Bank, job_ids: list[str]) -> None:
    for job_id in job_ids:
        with bank.db.transaction() as s:
            jobs.finish(s.get(Job, job_id), "succeeded")


class Collector:
    """Runs one stream in a thread and keeps what it yields."""

    def __init__(self, stream: Iterator[Event | None], *, delay: float = 0.0) -> None:
        self.events: list[Event] = []
        self._stream, self._delay = stream, delay
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for item in self._stream:
            if item is not None:
                self.events.append(item)
                time.sleep(self._delay)

    def wait_for(self, n: int, timeout: float = 15) -> list[int]:
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return [e.id for e in self.events]


def test_every_stream_of_an_owner_gets_every_event_in_order_from_one_reader(bank, tail):
    alice, bob = make_user(bank), make_user(bank)
    alive = threading.Event()
    streams = [Collector(follow(tail, alice.id, 0, authorised=lambda: not alive.is_set())) for _ in range(40)]
    bobs = Collector(follow(tail, bob.id, 0, authorised=lambda: not alive.is_set()))
    time.sleep(0.3)
    mine, theirs = new_jobs(bank, alice.id, 3), new_jobs(bank, bob.id, 1)
    finish(bank, mine + theirs)
    expected = [e.id for e in events_after(bank.db, alice)]
    assert len(expected) == 6
    for stream in streams:
        assert stream.wait_for(6) == expected
    assert bobs.wait_for(2) == [e.id for e in events_after(bank.db, bob)]
    alive.set()
    assert {e.owner_id for s in streams for e in s.events} == {alice.id}


def test_a_stream_too_slow_for_its_inbox_reads_from_the_database_and_misses_nothing(bank, tail, caplog):
    alice = make_user(bank)
    with caplog.at_level(logging.INFO, "core.event_streams"):
        slow = Collector(follow(tail, alice.id, 0, authorised=lambda: True), delay=0.05)
        time.sleep(0.3)
        made = new_jobs(bank, alice.id, 20)  # 20 events in one read: the inbox holds 5
        finish(bank, made)
        expected = [e.id for e in events_after(bank.db, alice, limit=1000)]
        assert len(expected) == 40
        assert slow.wait_for(40) == expected
    assert any("fell behind" in r.getMessage() for r in caplog.records)


def test_a_client_ahead_of_the_tail_gets_no_event_twice(bank, tail):
    alice = make_user(bank)
    made = new_jobs(bank, alice.id, 2)
    first, second = (e.id for e in events_after(bank.db, alice))
    # Resuming after the second event, while the tail starts from a position at or before it.
    stream = Collector(follow(tail, alice.id, second, authorised=lambda: True))
    time.sleep(0.3)
    finish(bank, made)
    later = [e.id for e in events_after(bank.db, alice, second)]
    assert stream.wait_for(2) == later and first < second < later[0]
    time.sleep(0.3)
    assert [e.id for e in stream.events] == later


def test_the_tail_runs_only_while_a_stream_is_open(bank, tail):
    alice = make_user(bank)
    done = threading.Event()
    Collector(follow(tail, alice.id, 0, authorised=lambda: not done.is_set()))
    time.sleep(0.2)
    assert any(t.name == "bankq-event-tail" and t.is_alive() for t in threading.enumerate())
    done.set()
    finish(bank, new_jobs(bank, alice.id, 1))  # wakes the stream, which sees it must end
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(t.name == "bankq-event-tail" for t in threading.enumerate()):
        time.sleep(0.05)
    assert not any(t.name == "bankq-event-tail" for t in threading.enumerate())
    again = Collector(follow(tail, alice.id, 0, authorised=lambda: True))
    assert len(again.wait_for(2)) == 2


def test_an_event_after_an_id_that_was_rolled_back_still_arrives(bank, tail):
    """A rolled-back transaction leaves a gap in the ids that no commit will fill: the horizon lets the tail past it."""
    alice = make_user(bank)
    stream = Collector(follow(tail, alice.id, 0, authorised=lambda: True))
    time.sleep(0.3)
    rolled_back_job(bank, alice.id)
    started = time.monotonic()
    new_jobs(bank, alice.id, 1)
    assert len(stream.wait_for(1, timeout=5)) == 1
    assert time.monotonic() - started < 2
    assert [e.id for e in stream.events] == [e.id for e in events_after(bank.db, alice)]
