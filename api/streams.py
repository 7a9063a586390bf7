"""Server-Sent Events plumbing: a bounded number of open streams per process, the SSE wire format, and the
check that ends a stream when its token expires or is revoked.

Each open stream holds one gunicorn thread for as long as it is open, waiting on its inbox (core.event_streams):
an idle stream costs a blocked thread and no CPU. The API's worker (api.gunicorn_conf) has BANKQ_MAX_STREAMS
threads for streams on top of its --threads for ordinary requests, so streams never take a request's thread; a
stream beyond the cap is answered 503 with Retry-After."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, Response
from prometheus_client import Gauge

from api.security import user_of_token
from core.bank import Bank
from core.event_order import Horizon
from core.event_streams import EventTail, StreamTiming
from core.event_wakeups import WakeupHub
from core.events import Event
from core.models import User

OPEN_STREAMS = Gauge("bankq_sse_streams_open", "Server-Sent Event streams open", multiprocess_mode="livesum")
TEXT_EVENT_STREAM = "text/event-stream"
LAST_EVENT_ID_MAX = 2**63 - 1
AUTH_RECHECK_SECONDS = 10.0

class StreamGate:
    """A counting semaphore over open streams; a stream that gets no slot is answered 503."""

    def __init__(self, max_streams: int) -> None:
        self.max_streams = max_streams
        self._lock = threading.Lock()
        self.open = 0

    def acquire(self) -> bool:
        with self._lock:
            if self.open >= self.max_streams:
                return False
            self.open += 1
        OPEN_STREAMS.inc()
        return True

    def release(self) -> None:
        with self._lock:
            self.open -= 1
        OPEN_STREAMS.dec()


class Streams:
    """What the process's streams share: the tail (one reader of job_events, woken through one Redis subscription)
    and the gate."""

    def __init__(self, bank: Bank) -> None:
        settings = bank.settings
        hub = WakeupHub(settings.redis_url)
        poll = settings.stream_poll_seconds or (1.5 if hub.pushes else 0.5)
        timing = StreamTiming(poll_seconds=poll, keepalive_seconds=settings.stream_keepalive_seconds)
        self.tail = EventTail(bank.db, hub, Horizon(bank.db), timing)
        self.gate = StreamGate(settings.max_streams)
        self.users = StreamUsers(bank)
        self.retry_ms = settings.stream_retry_ms

    def close(self) -> None:
        """End every open stream of this app (its clients reconnect with Last-Event-ID)."""
        self.tail.hub.close()


class StreamBody:
    """The response body: frees the stream's slot exactly once, however the stream ends (its last event, the
    client gone and the write failing, shutdown), even if the server never started iterating it."""

    def __init__(self, frames: Iterator[bytes], release: Callable[[], None]) -> None:
        self._frames = frames
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._frames
        finally:
            self.close()

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()
        release, self._release = self._release, None
        if release is not None:
            release()


def event_frame(event: Event) -> bytes:
    return f"id: {event.id}\nevent: job\ndata: {event.data}\n\n".encode()


def sse_frames(retry_ms: int, items: Iterable[Event | None]) -> Iterator[bytes]:
    yield f"retry: {retry_ms}\n\n".encode()
    for item in items:
        yield b": keep-alive\n\n" if item is None else event_frame(item)


def stream_response(streams: Streams, items: Iterable[Event | None]) -> Response:
    body = StreamBody(sse_frames(streams.retry_ms, items), streams.gate.release)
    response = Response(body, mimetype=TEXT_EVENT_STREAM, direct_passthrough=True)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


class StreamUsers:
    """The users of a process's open streams, as last read for their token checks, each read reused for up to
    `seconds`: a thousand streams of forty customers cost forty look-ups per recheck, not a thousand (measured:
    holding 1,000 idle streams took a fifth of a core, most of it these look-ups)."""

    MAX_USERS = 10_000

    def __init__(self, bank: Bank, seconds: float = AUTH_RECHECK_SECONDS / 2) -> None:
        self.bank = bank
        self.seconds = seconds
        self.reads = 0  # look-ups made, for tests
        self._lock = threading.Lock()
        self._users: dict[str, tuple[float, User | None]] = {}

    def get(self, user_id: str) -> User | None:
        now = time.monotonic()
        with self._lock:
            hit = self._users.get(user_id)
        if hit is not None and now - hit[0] < self.seconds:
            return hit[1]
        user = self.bank.db.get(User, user_id)
        with self._lock:
            self.reads += 1
            if len(self._users) >= self.MAX_USERS:
                self._users.clear()  # bounded; the live streams' users come back on their next check
            self._users[user_id] = (now, user)
        return user


def token_check(bank: Bank, claims: dict[str, Any], *, users: StreamUsers | None = None,
                clock: Callable[[], float] = time.time,
                recheck_seconds: float = AUTH_RECHECK_SECONDS) -> Callable[[], bool]:
    """True while the stream's token is unexpired and, looked up every recheck_seconds, still grants access (not
    revoked, its user active and not logged out everywhere by a password change). With `users`, the look-up is
    shared with the process's other streams: a change to the user is then seen within recheck_seconds plus the
    users' reuse (15 s by default), a revocation within recheck_seconds."""
    expires = float(claims["exp"])
    last_check = [time.monotonic()]

    def authorised() -> bool:
        if clock() >= expires:
            return False
        if time.monotonic() - last_check[0] >= recheck_seconds:
            last_check[0] = time.monotonic()
            user = users.get(claims["sub"]) if users is not None else None
            if users is not None and user is None:
                return False
            return user_of_token(bank, claims, user) is not None and not bank.revocations.is_revoked(claims["jti"])
        return True

    return authorised


def init_streams(app: Flask, bank: Bank) -> None:
    app.extensions["bankq_streams"] = Streams(bank)
