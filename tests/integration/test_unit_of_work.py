"""The unit of work: what a transaction wrote to the outbox is published once, after its commit, never after a
rollback, and a publish failure leaves the rows to the relay without failing the work; `Recorded` commits a
failure's record and then raises the failure."""

from __future__ import annotations

import os
import time

import pytest
import redis
from sqlalchemy import func, select

from core import audit, jobs, outbox, users
from core.bank import Bank
from core.clock import clock
from core.db import Recorded
from core.errors import Unauthorized, ValidationFailed
from core.models import AuditEvent, Job, OutboxMessage, User
from core.settings import Settings
from core.setup import prepare
from tasks import publisher
from tests.support import PASSWORD, Recorder, auth_headers, make_user


def _rows(bank) -> list[tuple[int, str]]:
    with bank.db.transaction() as s:
        return [(m.id, m.job_id) for m in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]


def test_what_a_committed_transaction_wrote_is_published_once_after_the_commit(bank):
    bank.db.publisher = recorder = Recorder()
    with bank.db.transaction() as s:
        jobs.add_message(s, "notify.send", "notify", "first")
        jobs.add_message(s, "notify.send", "notify", "second")
        s.flush()
        assert recorder.calls == []  # nothing leaves before the commit
    [call] = recorder.calls
    assert [(m.id, m.job_id) for m in call] == _rows(bank)
    assert [(m.task_name, m.queue) for m in call] == [("notify.send", "notify")] * 2
    with bank.db.transaction() as s:
        s.scalar(select(func.count()).select_from(OutboxMessage))
    with bank.db.transaction() as s:
        jobs.add_message(s, "notify.send", "notify", "third")
    assert recorder.job_ids == ["first", "second", "third"]  # each row once, nothing for a read


def test_nothing_is_published_for_a_rolled_back_transaction_or_savepoint(bank):
    bank.db.publisher = recorder = Recorder()
    with pytest.raises(ValidationFailed), bank.db.transaction() as s:
        jobs.add_message(s, "notify.send", "notify", "rolled-back")
        s.flush()
        raise ValidationFailed("no")
    assert recorder.calls == [] and _rows(bank) == []

    with bank.db.transaction() as s:
        jobs.add_message(s, "notify.send", "notify", "kept")
        with pytest.raises(ValidationFailed), s.begin_nested():
            jobs.add_message(s, "notify.send", "notify", "savepoint-rolled-back")
            s.flush()
            raise ValidationFailed("no")
    assert recorder.job_ids == ["kept"] and [j for _, j in _rows(bank)] == ["kept"]


def test_a_failing_publisher_leaves_the_rows_to_the_relay_and_the_work_succeeds(bank):
    def broker_down(_db, _messages):
        raise ConnectionError("broker unreachable")

    bank.db.publisher = broker_down
    with bank.db.transaction() as s:
        jobs.add_message(s, "notify.send", "notify", "waits")
    assert [j for _, j in _rows(bank)] == ["waits"]
    sent = []
    clock.advance(seconds=60)
    assert outbox.relay(bank.db, lambda *m: sent.append(m)) == 1
    assert sent == [("notify.send", "notify", "waits")] and _rows(bank) == []


def test_a_request_answers_202_while_the_broker_is_down_and_the_relay_sends_its_message(bank, client):
    user = make_user(bank)
    headers = auth_headers(client, user, **{"Idempotency-Key": "broker-down"})

    def broker_down(_db, _messages):
        raise ConnectionError("broker unreachable")

    bank.db.publisher = broker_down  # installed by create_app as publish_soon; here the publish itself fails
    response = client.post("/api/v1/otp", json={"purpose": "login", "channel": "email"}, headers=headers)
    assert response.status_code == 202, response.get_json()
    [(_, notification_id)] = _rows(bank)
    sent = []
    clock.advance(seconds=60)
    assert outbox.relay(bank.db, lambda *m: sent.append(m)) == 1
    assert sent == [("notify.send", "notify", notification_id)]


def test_the_api_publishes_what_a_request_committed_to_the_real_broker(bank, client):
    user = make_user(bank)
    broker = redis.Redis.from_url(bank.settings.redis_url)
    before = broker.llen("notify")
    headers = auth_headers(client, user, **{"Idempotency-Key": "to-broker"})
    response = client.post("/api/v1/otp", json={"purpose": "login", "channel": "email"}, headers=headers)
    assert response.status_code == 202
    deadline = time.monotonic() + 10
    while (broker.llen("notify") == before or outbox.pending(bank.db)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broker.llen("notify") == before + 1 and outbox.pending(bank.db) == 0


def test_the_workers_publisher_sends_at_once_and_deletes_the_rows(bank, monkeypatch):
    monkeypatch.setattr(publisher, "_broker_down_until", 0.0)  # whatever an earlier outage test left
    broker = redis.Redis.from_url(bank.settings.redis_url)
    before = broker.llen("notify")
    bank.db.publisher = publisher.publish_now
    with bank.db.transaction() as s:
        jobs.add_message(s, "notify.send", "notify", "from-a-worker")
    assert broker.llen("notify") == before + 1 and outbox.pending(bank.db) == 0


def test_recorded_commits_the_record_then_raises_the_failure(bank):
    bank.db.publisher = recorder = Recorder()
    with pytest.raises(ValidationFailed, match="refused"), bank.db.transaction() as s:
        audit.record(s, None, "user.locked", "user:recorded")
        jobs.add_message(s, "notify.send", "notify", "told")
        raise Recorded(ValidationFailed("refused"))
    with bank.db.transaction() as s:
        assert s.scalar(select(AuditEvent.target).where(AuditEvent.action == "user.locked")) == "user:recorded"
    assert recorder.job_ids == ["told"]  # committed, so published


def test_recording_failure_records_in_its_own_transaction_then_raises(bank):
    user = make_user(bank)
    with bank.db.transaction() as s:
        job = jobs.new_job(s, kind="statement", user_id=user.id, resource_type="report", resource_id="r1")
        job.status = "running"

    def put_back(s):
        s.get(Job, job.id).status = "queued"

    with pytest.raises(RuntimeError, match="renderer crashed"), bank.db.recording_failure(put_back):
        raise RuntimeError("renderer crashed")
    assert bank.db.get(Job, job.id).status == "queued"
    with bank.db.recording_failure(put_back):
        pass  # nothing failed: nothing recorded


def test_a_wrong_password_is_counted_though_the_login_fails(bank):
    user = make_user(bank)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            users.authenticate(bank.db, bank.settings, user.username, "wrong-" + PASSWORD)
    assert bank.db.get(User, user.id).failed_logins == 2
    users.authenticate(bank.db, bank.settings, user.username, PASSWORD)
    assert bank.db.get(User, user.id).failed_logins == 0


def test_the_embedded_default_publishes_after_commit_alike(tmp_path):
    settings = Settings.from_env({"BANKQ_DATA_DIR": str(tmp_path), "BANKQ_SECRET_KEY": os.environ["BANKQ_SECRET_KEY"]})
    lite = Bank(settings)
    try:
        assert not lite.db.is_postgres
        prepare(lite)
        lite.db.publisher = recorder = Recorder()
        with pytest.raises(ValidationFailed), lite.db.transaction() as s:
            jobs.add_message(s, "notify.send", "notify", "rolled-back")
            raise ValidationFailed("no")
        with pytest.raises(ValidationFailed), lite.db.transaction() as s:
            jobs.add_message(s, "notify.send", "notify", "recorded")
            raise Recorded(ValidationFailed("no"))
        with lite.db.transaction() as s:
            jobs.add_message(s, "notify.send", "notify", "committed")
        assert recorder.job_ids == ["recorded", "committed"] and outbox.pending(lite.db) == 2
    finally:
        lite.db.dispose()
