"""Batch posting: many jobs per transaction, and one bad posting cannot hold up the others."""

from __future__ import annotations

from sqlalchemy import func, select, update

from core.ledger import check_ledger
from core.models import Entry, Job, Transfer
from core.transfers import post_transfer_jobs
from tests.support import accept_transfer, make_user, open_account


def _accept(bank, user, source, destination, amount, key):
    return accept_transfer(bank, user, source, destination, amount, key=key).body["id"]


def test_one_delivery_posts_a_whole_batch(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    ids = [_accept(bank, alice, source, destination, "1.00", f"b{i}") for i in range(30)]
    report = post_transfer_jobs(bank.db, ids[5], batch_size=100)
    assert report.posted[0] == ids[5] and sorted(report.posted) == sorted(ids)
    # The other 29 messages arrive later and find nothing left to do.
    assert all(post_transfer_jobs(bank.db, job_id).posted == [] for job_id in ids)
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Entry).where(Entry.account_id == destination)) == 30
        balances = [
            e.balance_after for e in s.scalars(select(Entry).where(Entry.account_id == source).order_by(Entry.id))
        ]
    assert balances == [100_00 - i * 100 for i in range(31)]


def test_a_posting_the_database_refuses_falls_back_to_one_by_one(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    ids = [_accept(bank, alice, source, destination, "2.00", f"f{i}") for i in range(5)]
    with bank.db.transaction() as s:  # a corrupted row that slipped past the checks: wrong currency
        s.execute(update(Transfer).where(Transfer.job_id == ids[2]).values(currency="USD"))
    report = post_transfer_jobs(bank.db, ids[0], batch_size=10)
    assert report.posted == [ids[0]]
    for job_id in ids[1:]:
        post_transfer_jobs(bank.db, job_id, batch_size=10)
    with bank.db.transaction() as s:
        statuses = {j.id: (j.status, j.error_code) for j in s.scalars(select(Job).where(Job.id.in_(ids)))}
    assert statuses[ids[2]] == ("failed", "posting_rejected")
    assert all(statuses[i] == ("succeeded", None) for i in ids if i != ids[2])
    assert check_ledger(bank.db)["ok"]
