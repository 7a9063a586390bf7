"""Wake-ups for readers of job_events. Only a hint: readers re-read job_events when woken and on a fallback poll,
so a missed wake-up costs latency, never an event.

On PostgreSQL one listener thread per process holds its own connection, LISTENs on `bankq_job_events` (notified at
commit by the job_events trigger) and rings every bell. On SQLite there is no LISTEN: readers poll.

Why not Redis pub/sub: NOTIFY is sent by the committing transaction itself, at its commit and never for a rollback,
so the wake-up cannot race the data it announces and needs no publisher that could crash between the two."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "bankq_job_events"
_HUBS: weakref.WeakSet[WakeupHub] = weakref.WeakSet()


class Wakeup:
    """One waiting reader's doorbell."""

    def __init__(self, hub: WakeupHub) -> None:
        self._hub = hub
        self._rung = threading.Event()

    def ring(self) -> None:
        self._rung.set()

    def wait(self, seconds: float) -> bool:
        """True when rung (or the hub closed) within `seconds`; the bell is reset either way."""
        rung = self._rung.wait(max(0.0, seconds))
        self._rung.clear()
        return rung

    @property
    def closed(self) -> bool:
        return self._hub.closed


class WakeupHub:
    """The bells of a process's readers. `listen_url` (PostgreSQL) starts the listener on first subscribe."""

    def __init__(self, listen_url: str | None = None, *, max_backoff: float = 10.0) -> None:
        self._lock = threading.Lock()
        self._waiting: set[Wakeup] = set()
        self._closed = threading.Event()
        self._listen_url = listen_url
        self._listener: threading.Thread | None = None
        self._max_backoff = max_backoff
        self.listening = threading.Event()  # set while the listener holds a live LISTEN connection
        _HUBS.add(self)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @contextmanager
    def subscribe(self) -> Iterator[Wakeup]:
        """A bell rung whenever a job event commits (and whenever the listener (re)connects)."""
        wakeup = Wakeup(self)
        with self._lock:
            self._waiting.add(wakeup)
            self._start_listener()
        try:
            yield wakeup
        finally:
            with self._lock:
                self._waiting.discard(wakeup)

    def wake_all(self) -> None:
        with self._lock:
            bells = list(self._waiting)
        for bell in bells:
            bell.ring()

    def close(self) -> None:
        """Ends every reader of this hub (process shutdown): they see `closed` when woken."""
        self._closed.set()
        self.wake_all()

    def _start_listener(self) -> None:
        if self._listen_url is None or self._listener is not None or self.closed:
            return
        self._listener = threading.Thread(target=self._listen, name="bankq-event-listener", daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        assert self._listen_url is not None
        conninfo = make_url(self._listen_url).set(drivername="postgresql").render_as_string(hide_password=False)
        backoff, warned = 0.5, False
        while not self.closed:
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5, keepalives=1,
                                     keepalives_idle=10, keepalives_interval=5, keepalives_count=3) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    if warned:
                        log.info("event listener: listening again on %s", CHANNEL)
                    backoff, warned = 0.5, False
                    self.wake_all()  # whatever was notified while we were away: streams re-read
                    while not self.closed:
                        for _ in conn.notifies(timeout=1.0):
                            self.wake_all()
            except psycopg.Error as exc:
                self.listening.clear()
                if not warned:
                    log.warning("event listener: lost PostgreSQL (%s); streams poll until it is back", exc)
                    warned = True
                self._closed.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
        self.listening.clear()


def close_all() -> None:
    """Close every hub of this process: its readers end (event streams: clients reconnect with Last-Event-ID)."""
    for hub in list(_HUBS):
        hub.close()
