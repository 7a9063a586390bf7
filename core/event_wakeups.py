"""Wake-ups for readers of job_events, through Redis pub/sub. Only a hint: readers re-read job_events when woken
and on a fallback poll, so a missed or doubled wake-up costs latency or one query, never an event.

A transaction that wrote job events rings its process's `Doorbell` once it has committed (core.db); the doorbell's
thread publishes one message on `CHANNEL` for everything rung since it last published, off the committing thread.
In each reading process one `WakeupHub` thread subscribes and rings every waiting reader's bell. Without Redis
(the embedded default) nothing is published and readers poll the database.

Why not PostgreSQL NOTIFY from the job_events trigger: NOTIFY takes a database-wide lock from a notifying
transaction's commit until it ends, so every transaction that writes a job event (every accept, every posting)
would commit one at a time. Measured with pgbench at 16 clients, an INSERT with a NOTIFY committed at a fifth of
the rate of the INSERT alone."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

CHANNEL = "bankq:job-events"
_HUBS: weakref.WeakSet[WakeupHub] = weakref.WeakSet()


def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10)


class Doorbell:
    """Publishes that job events were committed. `ring()` never blocks on Redis: it sets a flag, and one thread
    publishes a single message for every ring since its last publish (a burst of commits is one message)."""

    def __init__(self, url: str, *, pause_seconds: float = 2.0) -> None:
        self._url = url
        self._pause = pause_seconds
        self._rung = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.published = 0  # messages sent, for tests and the curious

    def ring(self) -> None:
        self._rung.set()
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stopped.is_set():
                    self._thread = threading.Thread(target=self._run, name="bankq-doorbell", daemon=True)
                    self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._rung.set()

    def _run(self) -> None:
        import redis

        client, outage = _client(self._url), False
        while not self._stopped.is_set():
            self._rung.wait()
            if self._stopped.is_set():
                return
            self._rung.clear()
            try:
                client.publish(CHANNEL, b"1")
                self.published += 1
                if outage:
                    outage = False
                    log.info("event wake-ups: publishing to Redis again")
            except (redis.RedisError, OSError) as exc:
                if not outage:
                    outage = True
                    log.warning("event wake-ups: Redis unavailable (%s); streams and webhooks notice new events "
                                "on their next poll until it is back", exc)
                self._stopped.wait(self._pause)  # a wake-up is only a hint: drop it, don't pile up retries


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
    """The bells of a process's readers. With `redis_url`, a listener thread (started on the first subscribe)
    rings them all whenever a wake-up is published; without, nothing rings them and they poll."""

    def __init__(self, redis_url: str | None = None, *, max_backoff: float = 10.0) -> None:
        self._lock = threading.Lock()
        self._waiting: set[Wakeup] = set()
        self._closed = threading.Event()
        self._redis_url = redis_url
        self._listener: threading.Thread | None = None
        self._max_backoff = max_backoff
        self.listening = threading.Event()  # set while the listener holds a live subscription
        _HUBS.add(self)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def pushes(self) -> bool:
        """Whether wake-ups arrive at all (readers can then poll less often)."""
        return self._redis_url is not None

    @contextmanager
    def subscribe(self) -> Iterator[Wakeup]:
        """A bell rung whenever job events were committed (and whenever the listener (re)connects)."""
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
        if self._redis_url is None or self._listener is not None or self.closed:
            return
        self._listener = threading.Thread(target=self._listen, name="bankq-event-listener", daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        import redis

        assert self._redis_url is not None
        backoff, warned = 0.5, False
        while not self.closed:
            client = _client(self._redis_url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(CHANNEL)
                pubsub.get_message(timeout=1.0)  # the subscription's confirmation: now we hear every publish
                self.wake_all()  # whatever was published while we were away: readers re-read
                self.listening.set()  # after the catch-up wake-up: whoever waits for this sees only later ones
                if warned:
                    log.info("event listener: subscribed again on %s", CHANNEL)
                backoff, warned = 0.5, False
                while not self.closed:
                    if pubsub.get_message(timeout=1.0) is not None:
                        self.wake_all()
            except (redis.RedisError, OSError) as exc:
                self.listening.clear()
                if self.closed:
                    break
                if not warned:
                    log.warning("event listener: lost Redis (%s); streams poll until it is back", exc)
                    warned = True
                self._closed.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            finally:
                pubsub.close()
                client.close()
        self.listening.clear()


def close_all() -> None:
    """Close every hub of this process: its readers end (event streams: clients reconnect with Last-Event-ID)."""
    for hub in list(_HUBS):
        hub.close()
