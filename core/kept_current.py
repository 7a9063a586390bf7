"""A process-local copy of something the database holds, refreshed by one background thread, trusted only while its
last refresh is recent: what lets a per-request check (a revoked token, a token's user) cost no round trip."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Refresher:
    """Calls `refresh` every `every` seconds in a daemon thread, started by the first `fresh()`. `fresh()` is True
    while the last refresh that succeeded started at most `max_age` seconds ago: whatever it read was committed
    before then, so a copy served while fresh lags the database by at most `max_age`. While it is not fresh (the
    database slow or down, the thread stuck) callers ask the database instead. Failures and recovery are logged
    once each, not at every attempt."""

    def __init__(self, name: str, refresh: Callable[[], None], *, every: float, max_age: float,
                 asked_instead: str = "the database") -> None:
        self.name, self._refresh, self.asked_instead = name, refresh, asked_instead
        self.every, self.max_age = every, max_age
        self._read_at = -1.0e9  # monotonic time the last successful refresh started
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._failing = False

    def fresh(self) -> bool:
        if self._thread is None:
            self._start()
        return time.monotonic() - self._read_at <= self.max_age

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"bankq-{self.name}", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            started = time.monotonic()
            self.run_once(started)
            time.sleep(max(0.0, self.every - (time.monotonic() - started)))

    def run_once(self, started: float | None = None) -> bool:
        """One refresh now (the thread's step; tests call it to be certain a refresh happened)."""
        started = time.monotonic() if started is None else started
        try:
            self._refresh()
        except Exception as exc:  # the database is away: callers ask it directly meanwhile
            if not self._failing:
                self._failing = True
                log.warning("%s: cannot refresh the local copy (%s); checks ask %s meanwhile", self.name, exc,
                            self.asked_instead)
            return False
        self._read_at = started
        if self._failing:
            self._failing = False
            log.warning("%s: the local copy is current again", self.name)
        return True
