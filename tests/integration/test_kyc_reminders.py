"""Customers whose identity is not verified are reminded once per period, however many sweeps run."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from core.clock import clock, utcnow
from core.kyc.reminders import remind_unverified
from core.models import Notification
from tests.support import make_user


def reminders_for(bank, user):
    with bank.db.transaction() as s:
        return s.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user.id, Notification.template == "kyc_reminder")
        )


def test_once_per_period_and_never_for_the_verified(bank):
    clock.freeze(utcnow())
    waiting, verified = make_user(bank, kyc="unverified"), make_user(bank, kyc="verified")
    assert remind_unverified(bank) == 0
    clock.advance(days=3, seconds=1)
    assert remind_unverified(bank) == 1
    assert remind_unverified(bank) == 0
    clock.advance(days=2)
    assert remind_unverified(bank) == 0
    clock.advance(days=1)

    results: list[int] = []
    barrier = threading.Barrier(2)

    def sweep() -> None:
        barrier.wait()
        results.append(remind_unverified(bank))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 1  # two beats at once: still one reminder for the period
    assert reminders_for(bank, waiting) == 2 and reminders_for(bank, verified) == 0
