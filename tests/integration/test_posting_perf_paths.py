"""The cheap paths of accepting and posting keep every guarantee: what accept hands the publisher, a duplicate
delivery, a job held by another worker's batch, and the set-based batch write (on PostgreSQL and on SQLite)."""

from __future__ import annotations

import os
import threading
import time

import pytest
from sqlalchemy import func, select, update

from core import outbox
from core.bank import Bank
from core.ledger import check_ledger
from core.models import Account, Entry, Job, OutboxMessage, Transfer
from core.settings import Settings
from core.setup import prepare
from core.transfers import TransferRequest, post_transfer_jobs, post_transfer_jobs_many, request_transfer
from tests.support import Recorder, make_user, open_account


def _accept(bank, user, source, destination, amount, key):
    return request_transfer(
        bank,
        user,
        TransferRequest(source_account_id=source, destination_account_id=destination, amount=amount, currency="EUR"),
        idempotency_key=key,
        body={"k": key},
    )


def test_accept_hands_the_publisher_what_publishing_needs_and_publishing_deletes_the_row(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 10_00), open_account(bank, bob, "EUR")
    bank.db.publisher = recorder = Recorder()
    accepted = _accept(bank, alice, source, destination, "1.00", "pub")
    assert accepted.body["attempts"] == 0 and accepted.body["status"] == "queued"
    [[message]] = recorder.calls
    with bank.db.transaction() as s:
        row = s.get(OutboxMessage, message.id)
        assert (row.task_name, row.queue, row.job_id) == ("transfers.post", "transfers", accepted.body["id"])
    sent = []
    assert outbox.publish(bank.db, lambda *m: sent.append(m), [message]) == 1
    assert sent == [("transfers.post", "transfers", accepted.body["id"])]
    assert outbox.pending(bank.db) == 0
    replay = _accept(bank, alice, source, destination, "1.00", "pub")
    assert replay.replayed and recorder.calls == [[message]] and replay.body == accepted.body


def test_a_duplicate_delivery_of_a_finished_job_changes_nothing(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 10_00), open_account(bank, bob, "EUR")
    first = _accept(bank, alice, source, destination, "1.00", "d1").body["id"]
    assert post_transfer_jobs(bank.db, first).posted == [first]
    second = _accept(bank, alice, source, destination, "1.00", "d2").body["id"]
    report = post_transfer_jobs(bank.db, first)
    assert (report.posted, report.failed, report.own_job_busy) == ([], [], False)
    with bank.db.transaction() as s:
        assert s.get(Job, first).attempts == 1
        assert s.get(Job, second).status == "queued"  # its own delivery posts it
    assert post_transfer_jobs(bank.db, second).posted == [second]


@pytest.mark.parametrize("holder_commits", [False, True])
def test_a_job_held_by_another_batch_is_waited_for_not_retried(bank, holder_commits):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 10_00), open_account(bank, bob, "EUR")
    job_id = _accept(bank, alice, source, destination, "1.00", "held").body["id"]
    locked, release = threading.Event(), threading.Event()

    def holder() -> None:  # another worker's open batch: it holds the job row, then commits or rolls back
        with bank.db.transaction() as s:
            job = s.get(Job, job_id, with_for_update=True)
            if holder_commits:
                job.status, job.attempts = "cancelled", job.attempts + 1
            locked.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert locked.wait(10)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    report = post_transfer_jobs(bank.db, job_id)
    thread.join()
    assert time.monotonic() - started >= 0.25  # it waited for the holder
    assert not report.own_job_busy
    with bank.db.transaction() as s:
        job = s.get(Job, job_id)
    if holder_commits:
        assert report.posted == [] and job.status == "cancelled"
    else:
        assert report.posted == [job_id] and (job.status, job.attempts) == ("succeeded", 1)


def _mixed_batch(bank: Bank) -> None:
    """One batch holding a posting, two refusals and a job whose transfer is no longer pending."""
    alice, bob, carol = make_user(bank), make_user(bank), make_user(bank)
    rich, poor = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR", 1_00)
    frozen = open_account(bank, carol, "EUR")
    ok = _accept(bank, alice, rich, poor, "5.00", "ok").body["id"]
    broke = _accept(bank, bob, poor, rich, "20.00", "broke").body["id"]
    to_frozen = _accept(bank, alice, rich, frozen, "1.00", "frozen").body["id"]
    stale = _accept(bank, alice, rich, poor, "1.00", "stale").body["id"]
    ok2 = _accept(bank, alice, rich, poor, "2.50", "ok2").body["id"]
    with bank.db.transaction() as s:
        s.execute(update(Account).where(Account.id == frozen).values(status="frozen"))
        s.execute(update(Transfer).where(Transfer.job_id == stale).values(status="cancelled"))
    report = post_transfer_jobs(bank.db, ok, batch_size=100)
    assert report.posted[0] == ok and sorted(report.posted) == sorted([ok, ok2])
    assert sorted(report.failed) == sorted([broke, to_frozen, stale])
    with bank.db.transaction() as s:
        jobs = {j.id: j for j in s.scalars(select(Job).where(Job.id.in_([ok, broke, to_frozen, stale, ok2])))}
        transfers = {t.job_id: t for t in s.scalars(select(Transfer).where(Transfer.job_id.in_(list(jobs))))}
        balances = {a.id: a.balance for a in s.scalars(select(Account).where(Account.id.in_([rich, poor, frozen])))}
        entries = s.scalar(
            select(func.count()).select_from(Entry).where(Entry.transfer_id.in_([transfers[ok].id, transfers[ok2].id]))
        )
    for job_id in (ok, ok2):
        job, transfer = jobs[job_id], transfers[job_id]
        assert (job.status, job.attempts, job.error_code, transfer.status) == ("succeeded", 1, None, "posted")
        assert job.result == {"transfer_id": transfer.id, "status": "posted"}
        assert job.finished_at is not None and transfer.posted_at is not None
    assert (jobs[broke].status, jobs[broke].error_code, transfers[broke].failure_code) == (
        "failed",
        "insufficient_funds",
        "insufficient_funds",
    )
    assert jobs[broke].result == {"transfer_id": transfers[broke].id, "status": "failed"}
    assert jobs[broke].error_message == "The source account does not have enough money."
    assert (jobs[to_frozen].error_code, jobs[to_frozen].error_message) == (
        "account_frozen",
        "The destination account is frozen.",
    )
    assert transfers[to_frozen].status == "failed"
    assert (jobs[stale].status, jobs[stale].error_code, jobs[stale].result) == ("failed", "invalid_state", None)
    assert transfers[stale].status == "cancelled"
    assert all(j.attempts == 1 for j in jobs.values())
    assert balances == {rich: 50_00 - 7_50, poor: 1_00 + 7_50, frozen: 0}
    assert entries == 4
    assert check_ledger(bank.db)["ok"]
    assert all(post_transfer_jobs(bank.db, j).posted == [] for j in jobs)  # late duplicates do nothing


def test_a_mixed_batch_is_written_set_wise_on_postgresql(bank):
    _mixed_batch(bank)


def test_a_mixed_batch_is_written_the_same_on_sqlite(tmp_path):
    settings = Settings.from_env({"BANKQ_DATA_DIR": str(tmp_path), "BANKQ_SECRET_KEY": os.environ["BANKQ_SECRET_KEY"]})
    bank = Bank(settings)
    try:
        assert not bank.db.is_postgres
        prepare(bank)
        _mixed_batch(bank)
    finally:
        bank.db.dispose()


def test_many_accepted_jobs_go_to_the_broker_as_one_message_and_post_together(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 10_00), open_account(bank, bob, "EUR")
    bank.db.publisher = recorder = Recorder()
    ids = [_accept(bank, alice, source, destination, "1.00", f"many-{n}").body["id"] for n in range(5)]
    messages = [m for call in recorder.calls for m in call]
    singles, many = [], []
    assert outbox.publish(bank.db, lambda *m: singles.append(m), messages, lambda *m: many.append(m)) == 5
    assert singles == [] and many == [("transfers.post_many", "transfers", ids)]
    assert outbox.pending(bank.db) == 0
    report = post_transfer_jobs_many(bank.db, ids + ids[:2], batch_size=3)  # a duplicate id costs nothing
    assert sorted(report.posted) == sorted(ids) and report.failed == [] and not report.own_job_busy
    with bank.db.transaction() as s:
        assert {j.status for j in s.scalars(select(Job).where(Job.id.in_(ids)))} == {"succeeded"}
    assert post_transfer_jobs_many(bank.db, ids).posted == []  # a duplicate message changes nothing


def test_one_message_for_many_leaves_a_held_job_to_its_holder(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 10_00), open_account(bank, bob, "EUR")
    held, free = (_accept(bank, alice, source, destination, "1.00", f"h-{n}").body["id"] for n in range(2))
    locked, release = threading.Event(), threading.Event()

    def holder() -> None:
        with bank.db.transaction() as s:
            s.get(Job, held, with_for_update=True)
            locked.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert locked.wait(10)
    threading.Timer(0.3, release.set).start()
    report = post_transfer_jobs_many(bank.db, [held, free])
    thread.join()
    assert sorted(report.posted) == sorted([held, free]) and not report.own_job_busy  # the holder rolled back


def test_the_relay_sends_what_an_outage_left_many_to_a_message(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 10_00), open_account(bank, bob, "EUR")
    ids = [_accept(bank, alice, source, destination, "1.00", f"r-{n}").body["id"] for n in range(3)]
    many: list[tuple] = []
    assert outbox.relay(bank.db, lambda *m: None, grace_seconds=0, send_many=lambda *m: many.append(m)) == 3
    assert many == [("transfers.post_many", "transfers", ids)]
