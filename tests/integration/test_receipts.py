"""Every customer transfer that ends gets exactly one receipt, however many sweeps run; the transfers of one
customer that ended since the last sweep share one email."""

from __future__ import annotations

import threading

from sqlalchemy import select

from core.models import Notification
from core.notifications.templates import render_email
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
