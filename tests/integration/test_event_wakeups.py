"""Wake-ups through Redis: a commit that changed a job's status rings the doorbell, the listener hears it, and both
come back after a Redis restart with one warning each; a commit that changed no status rings nothing; on SQLite
streams poll and still see every event."""

from __future__ import annotations

import logging
import threading
import time

import redis

from core import jobs
from core.bank import Bank
from core.event_order import Horizon
from core.event_streams import EventTail, StreamTiming, follow
from core.event_wakeups import CHANNEL, Doorbell, WakeupHub
from core.models import Job, User
from core.settings import Settings
from core.setup import migrate
from tests import servers
from tests.support import make_user, rolled_back_job


def _wait(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_listener_and_the_doorbell_come_back_after_a_redis_restart_and_warn_once(caplog):
    server = servers.start_redis()
    hub = WakeupHub(server.url, max_backoff=1.0)
    doorbell = Doorbell(server.url, pause_seconds=0.2)
    try:
        with caplog.at_level(logging.WARNING, "core.event_wakeups"), hub.subscribe() as bell:
            assert hub.listening.wait(10)
            bell.wait(0)
            assert not bell.wait(0.5)
            doorbell.ring()
            assert bell.wait(5)

            server.halt()
            assert _wait(lambda: not hub.listening.is_set(), 10)
            for _ in range(3):  # rings while Redis is down are dropped, with one warning
                doorbell.ring()
                time.sleep(0.3)
            server.resume()
            assert hub.listening.wait(15)
            bell.wait(0)
            assert _wait(lambda: (doorbell.ring(), bell.wait(0.3))[1], 10)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len([w for w in warnings if w.startswith("event listener")]) == 1, warnings
        assert len([w for w in warnings if w.startswith("event wake-ups")]) == 1, warnings
    finally:
        doorbell.stop()
        hub.close()
        server.stop()


def test_a_commit_rings_only_when_it_changed_a_jobs_status(bank: Bank, redis_server):
    listener = redis.Redis.from_url(redis_server.url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(CHANNEL)
    listener.get_message(timeout=1)

    def published(seconds: float = 1.0) -> int:
        heard, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            if listener.get_message(timeout=0.05) is not None:
                heard += 1
        return heard

    try:
        user = make_user(bank, username="wendy")
        assert published(0.3) == 0
        with bank.db.transaction() as s:
            job = jobs.new_job(s, kind="transfer", user_id=user.id, resource_type="transfer", resource_id="t-1")
        assert published() == 1  # the insert wrote the "queued" event
        with bank.db.transaction() as s:
            s.get(Job, job.id).attempts += 1  # no status change: no event, no wake-up
        assert published() == 0
        with bank.db.transaction() as s:
            jobs.finish(s.get(Job, job.id), "succeeded")
        assert published() == 1
        rolled_back_job(bank, user.id)
        assert published() == 0  # a rollback committed no event to announce
    finally:
        listener.close()


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
