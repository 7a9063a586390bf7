"""Job events are written by the database with every status change, in the changing transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from core import jobs
from core.bank import Bank
from core.events import events_after
from core.models import Job, User
from core.settings import Settings
from core.setup import migrate
from core.transfers import post_transfer_jobs
from tests.support import accept_transfer, make_user, open_account


def test_each_status_change_has_its_event_with_the_job_as_the_api_shows_it(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")
    accepted = accept_transfer(bank, alice, source, destination, key="e1")
    job_id = accepted.body["id"]
    assert [e.status for e in events_after(bank.db, alice, job_id=job_id)] == ["queued"]
    assert post_transfer_jobs(bank.db, job_id).posted == [job_id]  # the set-based posting path

    queued, succeeded = events_after(bank.db, alice, job_id=job_id)
    assert (queued.status, succeeded.status) == ("queued", "succeeded")
    assert queued.id < succeeded.id
    assert queued.job == accepted.body
    assert succeeded.job == jobs.get_job(bank.db, alice, job_id)
    assert [e.id for e in events_after(bank.db, alice, queued.id)] == [succeeded.id]


def test_a_rolled_back_change_leaves_no_event(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")
    job_id = accept_transfer(bank, alice, source, destination, key="e2").body["id"]
    with pytest.raises(RuntimeError), bank.db.transaction() as s:
        s.execute(update(Job).where(Job.id == job_id).values(status="cancelled"))
        raise RuntimeError("changed our mind")
    assert [e.status for e in events_after(bank.db, alice, job_id=job_id)] == ["queued"]


def test_nobody_sees_another_users_events(bank):
    alice, bob, mallory = make_user(bank), make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")
    job_id = accept_transfer(bank, alice, source, destination, key="e3").body["id"]
    assert events_after(bank.db, mallory) == []
    assert events_after(bank.db, bob) == []
    assert events_after(bank.db, mallory, job_id=job_id) == []
    assert [e.job_id for e in events_after(bank.db, alice)] == [job_id]


def test_the_embedded_database_writes_events_too(tmp_path):
    url = f"sqlite:///{tmp_path / 'events.db'}"
    migrate(url)
    bank = Bank(Settings.from_env({"DATABASE_URL": url, "BANKQ_DATA_DIR": str(tmp_path),
                                   "BANKQ_SECRET_KEY": "sqlite-events-key-0123456789abcdef0123456789"}))
    try:
        with bank.db.transaction() as s:
            user = User(username="sam", email="sam@example.com", full_name="Sam", password_hash="x")
            s.add(user)
            s.flush()
            job = jobs.new_job(s, kind="transfer", user_id=user.id, resource_type="transfer", resource_id="t-1")
        with bank.db.transaction() as s:
            jobs.finish(s.get(Job, job.id), "failed", error_code="insufficient_funds", error_message="Not enough")
        queued, failed = events_after(bank.db, user)
        assert (queued.status, failed.status) == ("queued", "failed")
        assert failed.job == jobs.get_job(bank.db, user, job.id)
        assert failed.job["error"] == {"code": "insufficient_funds", "message": "Not enough"}
    finally:
        bank.db.dispose()


def test_even_a_hand_written_update_cannot_change_a_status_without_its_event(bank):
    """The events come from the database, not from a code path that could be bypassed."""
    from sqlalchemy import text

    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")
    job_id = accept_transfer(bank, alice, source, destination, key="e4").body["id"]
    with bank.db.transaction() as s:
        s.execute(text("UPDATE jobs SET status = 'cancelled' WHERE id = :id"), {"id": job_id})
        s.execute(text("UPDATE jobs SET attempts = attempts + 1 WHERE id = :id"), {"id": job_id})  # no status change
    assert [e.status for e in events_after(bank.db, alice, job_id=job_id)] == ["queued", "cancelled"]
