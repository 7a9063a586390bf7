"""Dispatching: new job events become deliveries and due deliveries go to a sender, as soon as a wake-up says job
events were committed (core.event_wakeups), and on a fallback poll when none comes.

Any number of dispatchers may run, one in each worker that sends webhooks: fan-out takes turns on its cursor row and
claims are SKIP LOCKED, so two dispatchers never hand over the same delivery. What a dispatcher misses (a lost
wake-up, a sender that failed) the next round or another dispatcher picks up, and a claim whose message was lost
is claimed again when its lease ends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from core.bank import Bank
from core.event_wakeups import WakeupHub
from core.webhooks.deliveries import Claim, claim_due
from core.webhooks.fan_out import fan_out

log = logging.getLogger(__name__)
Send = Callable[[Claim], None]


def hand_over(claims: list[Claim], send: Send) -> int:
    """Give each claim to the sender; stop at the first failure (the broker is down: the leases bring the rest
    back). Returns how many were handed over."""
    for sent, claim in enumerate(claims):
        try:
            send(claim)
        except Exception as exc:
            log.warning("webhooks: could not hand over deliveries (%s); they are claimed again when their lease "
                        "ends", exc)
            return sent
    return len(claims)


def dispatch(bank: Bank, send: Send) -> int:
    """One round: deliveries for every new event, then every due delivery the endpoints have room for."""
    fan_out(bank)
    return hand_over(claim_due(bank), send)


class Dispatcher:
    """A thread running `dispatch` after every wake-up (gathering the wake-ups of a burst into one round) and at
    least every poll_seconds. An error (the database down) is logged once and retried with backoff."""

    def __init__(self, bank: Bank, send: Send, *, poll_seconds: float | None = None,
                 gather_seconds: float = 0.01, max_backoff: float = 10.0) -> None:
        self.bank = bank
        self.send = send
        self.hub = WakeupHub(bank.settings.redis_url)
        self.poll_seconds = poll_seconds or (2.0 if self.hub.pushes else 0.5)
        self.gather_seconds = gather_seconds
        self.max_backoff = max_backoff
        self.rounds = 0
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bankq-webhook-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        self.hub.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff, failing = 0.5, False
        with self.hub.subscribe() as bell:
            while not self._stopped.is_set():
                try:
                    dispatch(self.bank, self.send)
                    self.rounds += 1
                    if failing:
                        log.info("webhook dispatcher: dispatching again")
                    backoff, failing = 0.5, False
                except Exception as exc:
                    if not failing:
                        log.warning("webhook dispatcher: %s: %s; retrying", type(exc).__name__, exc)
                        failing = True
                    self._stopped.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                bell.wait(self.poll_seconds)
                self._stopped.wait(self.gather_seconds)  # let a burst of commits land: one round for all of them
