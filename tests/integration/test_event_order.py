"""The horizon on real PostgreSQL: a job event id is not passed while the transaction that took it is open; a
transaction that wrote a job event and was left open holds readers back for the patience and no longer, however often
they ask; and a transaction that wrote no job event holds nobody back."""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from core import jobs
from core.bank import Bank
from core.event_order import Horizon
from core.models import Job
from tests import support
from tests.support import make_user, rolled_back_job


def _new_job(bank: Bank, user_id: str, n: int) -> str:
    with bank.db.transaction() as s:
        job = jobs.new_job(s, kind="transfer", user_id=user_id, resource_type="transfer", resource_id=f"t-{n}")
        s.flush()
        return job.id


def _top(bank: Bank) -> int:
    with psycopg.connect(support.libpq(bank.settings.database_url)) as conn:
        return int(conn.execute("SELECT max(id) FROM job_events").fetchone()[0])


def test_an_event_id_taken_by_an_open_transaction_is_not_passed_until_it_commits(bank: Bank) -> None:
    user = make_user(bank)
    horizon = Horizon(bank.db, reuse_seconds=0, patience_seconds=30)
    first = _new_job(bank, user.id, 0)
    assert horizon.settled() >= _top(bank)

    opened, release = threading.Event(), threading.Event()

    def slow_finish() -> None:
        with bank.db.transaction() as s:
            jobs.finish(s.get(Job, first), "succeeded")
            s.flush()  # the event's id is taken now
            opened.set()
            release.wait(10)

    slow = threading.Thread(target=slow_finish)
    slow.start()
    assert opened.wait(10)
    held = _top(bank)  # committed ids only: the open transaction's id is above it
    _new_job(bank, user.id, 1)  # a later id commits first
    later = _top(bank)
    assert later > held
    for _ in range(20):
        assert horizon.settled() < later  # the id below it may still appear
        time.sleep(0.01)
    release.set()
    slow.join(10)
    deadline = time.monotonic() + 5
    while horizon.settled() < _top(bank) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert horizon.settled() >= _top(bank)


def test_a_transaction_left_open_holds_the_horizon_back_for_the_patience_only_however_often_it_is_read(
    bank: Bank, caplog
) -> None:
    user = make_user(bank)
    patience = 1.0
    horizon = Horizon(bank.db, reuse_seconds=0, patience_seconds=patience)
    opened, release = threading.Event(), threading.Event()

    def left_open() -> None:  # wrote a job event (its job's), then stays open: a writer in every look from now on
        rolled_back_job(bank, user.id, while_open=lambda: (opened.set(), release.wait(30)))

    idle = threading.Thread(target=left_open)
    idle.start()
    assert opened.wait(10)
    target, committed, reached = None, 0.0, None
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "core.event_order"):
        while reached is None and time.monotonic() - started < patience * 8:
            _new_job(bank, user.id, int((time.monotonic() - started) * 1000))  # events keep coming
            if target is None and time.monotonic() - started > patience / 2:
                target, committed = _top(bank), time.monotonic()
            for _ in range(10):  # a busy reader: far more reads than the tops it keeps
                if target is not None and horizon.settled() >= target:
                    reached = time.monotonic() - committed
                    break
                time.sleep(0.002)
    release.set()
    idle.join(10)
    assert reached is not None, "the horizon never moved past events committed while a transaction stayed open"
    assert reached < patience * 2, reached
    assert any("is open after" in r.getMessage() for r in caplog.records)


def test_a_transaction_that_wrote_no_job_event_holds_nobody_back(bank: Bank) -> None:
    user = make_user(bank)
    horizon = Horizon(bank.db, reuse_seconds=0, patience_seconds=30)
    with psycopg.connect(support.libpq(bank.settings.database_url)) as elsewhere:
        elsewhere.execute("SELECT pg_current_xact_id()")  # open, with a transaction id, in every snapshot
        elsewhere.execute("SELECT count(*) FROM job_events")  # and reading job events too
        _new_job(bank, user.id, 0)
        target = _top(bank)
        deadline = time.monotonic() + 2
        while horizon.settled() < target and time.monotonic() < deadline:
            time.sleep(0.01)
        assert horizon.settled() >= target
        elsewhere.rollback()
