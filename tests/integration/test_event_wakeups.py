"""The wake-up listener survives a PostgreSQL restart; on SQLite streams poll and still see every event."""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from core import jobs
from core.bank import Bank
from core.event_order import Horizon
from core.event_streams import EventTail, StreamTiming, follow
from core.event_wakeups import CHANNEL, WakeupHub
from core.models import Job, User
from core.settings import Settings
from core.setup import migrate
from tests import servers
from tests.support import libpq


def _wait(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _notify(url: str, user_id: str) -> None:
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, user_id))


def test_the_listener_comes_back_after_a_postgresql_restart_and_warns_once(caplog):
    pg = servers.start_postgres()
    hub = WakeupHub(pg.url, max_backoff=1.0)
    try:
        with caplog.at_level(logging.WARNING, "core.event_wakeups"), hub.subscribe() as bell:
            assert hub.listening.wait(10)
            bell.wait(0)
            assert not bell.wait(0.5)
            _notify(pg.url, "u-1")
            assert bell.wait(5)

            pg.halt()
            assert _wait(lambda: not hub.listening.is_set(), 10)
            time.sleep(2.5)  # a few failed reconnects
            pg.resume()
            assert hub.listening.wait(15)
            bell.wait(0)
            _notify(pg.url, "u-1")
            assert bell.wait(5)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
    finally:
        hub.close()
        pg.stop()


def test_on_sqlite_streams_poll_and_miss_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'streams.db'}"
    migrate(url)
    bank = Bank(Settings.from_env({"DATABASE_URL": url, "BANKQ_DATA_DIR": str(tmp_path),
                                   "BANKQ_SECRET_KEY": "sqlite-streams-key-0123456789abcdef0123456789"}))
    hub = WakeupHub(None)
    try:
        with bank.db.transaction() as s:
            user = User(username="sam", email="sam@example.com", full_name="Sam", password_hash="x")
            s.add(user)
            s.flush()
            job = jobs.new_job(s, kind="transfer", user_id=user.id, resource_type="transfer", resource_id="t-1")

        def finish_later() -> None:
            time.sleep(0.3)
            with bank.db.transaction() as s:
                jobs.finish(s.get(Job, job.id), "succeeded")

        threading.Thread(target=finish_later).start()
        started = time.monotonic()
        tail = EventTail(bank.db, hub, Horizon(bank.db), StreamTiming(poll_seconds=0.5, keepalive_seconds=15))
        seen = list(follow(tail, user.id, 0, job_id=job.id, authorised=lambda: True))
        assert [e.status for e in seen if e is not None] == ["queued", "succeeded"]
        assert time.monotonic() - started < 2
    finally:
        hub.close()
        bank.db.dispose()
