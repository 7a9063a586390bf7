"""Every customer transfer that ends gets exactly one receipt, however many sweeps run; the transfers of one
customer that ended since the last sweep share one email."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from core.bank import Bank
from core.models import Notification, Transfer
from core.notifications.templates import render_email
from core.settings import Settings
from core.setup import prepare
from core.transfers import TransferRequest, post_transfer_jobs, request_transfer
from core.transfers.receipts import send_receipts
from tests.support import make_user, open_account


def _transfer(bank, user, source, destination, amount, key):
    accepted = request_transfer(
        bank, user,
        TransferRequest(source_account_id=source, destination_account_id=destination, amount=amount, currency="EUR"),
        idempotency_key=key, body={"k": key},
    )
    post_transfer_jobs(bank.db, accepted.body["id"], batch_size=1)
    return accepted.body["id"]


def test_posted_and_failed_transfers_get_one_receipt_each(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 10_00), open_account(bank, bob, "EUR")
    ids = []
    for key, amount in (("ok", "4.00"), ("too-much", "50.00")):
        accepted = request_transfer(
            bank,
            alice,
            TransferRequest(
                source_account_id=source, destination_account_id=destination, amount=amount, currency="EUR"
            ),
            idempotency_key=key,
            body={"k": key},
        )
        post_transfer_jobs(bank.db, accepted.body["id"], batch_size=1)
        ids.append(accepted.body["id"])

    results: list[int] = []
    barrier = threading.Barrier(2)

    def sweep() -> None:
        barrier.wait()
        results.append(send_receipts(bank))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 1 and send_receipts(bank) == 0  # one email for both: they ended in one sweep
    with bank.db.transaction() as s:
        notes = list(s.scalars(select(Notification).where(Notification.template.like("transfer_%"))))
    assert [n.template for n in notes] == ["transfer_receipts"] and notes[0].user_id == alice.id
    lines = notes[0].context["transfers"]
    assert [(line["amount"], line["status"], line["failure_code"]) for line in lines] == [
        ("4.00", "posted", None), ("50.00", "failed", "insufficient_funds")]
    assert "could not be completed (insufficient_funds)" in render_email("transfer_receipts", notes[0].context).text


def test_a_transfer_that_ends_alone_gets_its_own_receipt_and_each_customer_gets_one_email_per_sweep(bank):
    alice, bob, carol = make_user(bank), make_user(bank), make_user(bank)
    a, b, c = (open_account(bank, u, "EUR", 100_00) for u in (alice, bob, carol))
    _transfer(bank, alice, a, c, "1.00", "a-1")
    assert send_receipts(bank) == 1
    for n in range(30):
        _transfer(bank, bob, b, c, "1.00", f"b-{n}")
    _transfer(bank, alice, a, c, "2.00", "a-2")
    assert send_receipts(bank) == 2  # bob's thirty share one email; alice's one transfer has its own
    with bank.db.transaction() as s:
        notes = list(s.scalars(select(Notification).where(Notification.template.like("transfer_%"))
                               .order_by(Notification.created_at)))
    by_user: dict[str, list[Notification]] = {}
    for note in notes:
        by_user.setdefault(note.user_id, []).append(note)
    assert [n.template for n in by_user[alice.id]] == ["transfer_posted", "transfer_posted"]
    (bobs,) = by_user[bob.id]
    assert bobs.template == "transfer_receipts" and len({t["transfer_id"] for t in bobs.context["transfers"]}) == 30


def test_the_sweep_on_the_embedded_sqlite_database(tmp_path) -> None:
    """One UPDATE ... RETURNING claims the transfers there too (SQLite 3.35+), in the order they were made."""
    embedded = Bank(Settings.from_env({"BANKQ_DATA_DIR": str(tmp_path), "BANKQ_SECRET_KEY": "k" * 64}))
    prepare(embedded)
    try:
        alice, bob = make_user(embedded), make_user(embedded)
        source, destination = open_account(embedded, alice, "EUR", 10_00), open_account(embedded, bob, "EUR")
        jobs = [_transfer(embedded, alice, source, destination, amount, key)
                for key, amount in (("a", "1.00"), ("b", "2.00"), ("c", "3.00"))]
        assert send_receipts(embedded, limit=2) == 2  # two sweeps of two and one: one email each
        assert send_receipts(embedded) == 0
        with embedded.db.transaction() as s:
            notes = list(s.scalars(select(Notification).where(Notification.template.like("transfer_%"))
                                   .order_by(Notification.created_at)))
            unreceipted = s.scalar(select(func.count()).select_from(Transfer).where(Transfer.receipt_at.is_(None),
                                                                                   Transfer.kind == "transfer"))
        assert [n.template for n in notes] == ["transfer_receipts", "transfer_posted"] and unreceipted == 0
        assert [line["amount"] for line in notes[0].context["transfers"]] == ["1.00", "2.00"]
        assert notes[1].context["amount"] == "3.00" and len(jobs) == 3
    finally:
        embedded.db.dispose()
