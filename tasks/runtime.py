"""One Bank per worker process, built after fork so no connection crosses a process boundary."""

from __future__ import annotations

from celery.signals import worker_process_init

from core.bank import Bank

_bank: Bank | None = None


def bank() -> Bank:
    global _bank
    if _bank is None:
        _bank = Bank(pool_size=2)
    return _bank


@worker_process_init.connect
def _fresh_after_fork(**_: object) -> None:
    global _bank
    if _bank is not None:
        _bank.db.engine.dispose(close=False)
    _bank = None
