"""One Bank per worker process, built after fork so no connection crosses a process boundary."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from celery.signals import worker_process_init

from core.bank import Bank
from core.errors import DependencyUnavailable
from tasks import celery
from tasks.publisher import publish_now

log = logging.getLogger(__name__)

_bank: Bank | None = None


def bank() -> Bank:
    global _bank
    if _bank is None:
        _bank = Bank(pool_size=2)
        _bank.db.publisher = publish_now
    return _bank


@worker_process_init.connect
def _fresh_after_fork(**_: object) -> None:
    global _bank
    if _bank is not None:
        _bank.db.engine.dispose(close=False)
    _bank = None


def tick(name: str) -> Callable[[Callable[[], int]], Any]:
    """Register a beat tick. While the database is down a tick only logs one line and does nothing: the next tick
    after the outage catches up, since every tick claims whatever is due."""

    def register(run: Callable[[], int]) -> Any:
        @functools.wraps(run)
        def guarded() -> int:
            try:
                return run()
            except DependencyUnavailable as exc:
                log.warning("%s skipped: %s", name, exc.detail)
                return 0

        return celery.task(name=name)(guarded)

    return register
