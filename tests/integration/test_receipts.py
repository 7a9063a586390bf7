"""Every customer transfer that ends gets exactly one receipt, however many sweeps run."""

from __future__ import annotations

import threading

from sqlalchemy import select

from core.models import Notification
from core.transfers import TransferRequest, post_transfer_jobs, request_transfer
from core.transfers.receipts import send_receipts
from tests.support import make_user, open_account


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
    assert sum(results) == 2 and send_receipts(bank) == 0
    with bank.db.transaction() as s:
        notes = list(s.scalars(select(Notification).where(Notification.template.like("transfer_%"))))
    assert sorted(n.template for n in notes) == ["transfer_failed", "transfer_posted"]
    assert {n.user_id for n in notes} == {alice.id}
    failed = next(n for n in notes if n.template == "transfer_failed")
    assert failed.context["failure_code"] == "insufficient_funds"
