"""Event streams through real gunicorn and a real Celery worker: a transfer's events arrive; the API restarts under
an open stream and the client resumes with Last-Event-ID, missing and repeating nothing; a client that goes away
frees its stream slot."""

from __future__ import annotations

import json
import queue
import signal
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.stack import ADMIN, Client
from tests.integration.test_event_streams import parse

pytestmark = pytest.mark.e2e


class Stream:
    def __init__(self, url: str, token: str, last_event_id: int | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.response = requests.get(url, headers=headers, stream=True, timeout=(5, 60))
        assert self.response.status_code == 200, self.response.text
        self.frames: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for frame in parse(self.response.iter_content(chunk_size=None)):
                self.frames.put(frame)
        except (requests.RequestException, OSError, AttributeError):  # the server went away, or we closed it
            pass
        self.frames.put(None)

    def events_until(self, done: Any, timeout: float = 60) -> tuple[list[dict[str, Any]], bool]:
        """Events until done(events) or the stream ends; and whether it ended."""
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while not done(events):
            frame = self.frames.get(timeout=max(0.01, deadline - time.monotonic()))
            if frame is None:
                return events, True
            if frame.get("event") == "job":
                events.append({**json.loads(frame["data"]), "event_id": int(frame["id"])})
        return events, False


def succeeded(job_ids: set[str], earlier: list[dict[str, Any]] = ()) -> Any:  # type: ignore[assignment]
    return lambda events: job_ids <= {e["id"] for e in [*earlier, *events] if e["status"] == "succeeded"}


def test_events_survive_an_api_restart_without_loss_or_repeats(e2e_env, stack_factory):
    stack = stack_factory({**e2e_env, "BANKQ_STREAM_KEEPALIVE_SECONDS": "1"})
    client = Client(stack.start_api())
    stack.start_worker()
    admin = client.login(*ADMIN)
    _, alice = client.customer("alice")
    _, bob = client.customer("bob")
    source, destination = client.account(alice), client.account(bob)
    client.deposit(admin, source, "100.00", "fund")

    stream = Stream(f"{client.base}/events", alice)
    first = client.transfer(alice, "t-0", source, destination, "1.00").json()["id"]
    before, _ = stream.events_until(succeeded({first}))
    assert [e["status"] for e in before] == ["queued", "succeeded"]

    jobs = {client.transfer(alice, f"t-{n}", source, destination, "1.00").json()["id"] for n in range(1, 6)}
    stopping = time.monotonic()
    stack.kill("api", signal.SIGTERM)  # graceful: open streams end at once instead of holding the shutdown
    assert time.monotonic() - stopping < 10
    during, ended = stream.events_until(lambda events: False, timeout=10)
    assert ended
    seen = before + during
    client = Client(stack.start_api())
    resumed = Stream(f"{client.base}/events", alice, last_event_id=seen[-1]["event_id"])
    seen += resumed.events_until(succeeded(jobs, seen))[0]

    replay = Stream(f"{client.base}/events", alice)
    everything, _ = replay.events_until(lambda events: len(events) >= len(seen), timeout=30)
    assert [e["event_id"] for e in seen] == [e["event_id"] for e in everything]  # nothing lost or twice, in order
    assert len({e["event_id"] for e in seen}) == len(seen) == 2 * (len(jobs) + 1)
    assert all(e["status"] in ("queued", "succeeded") for e in seen)
    resumed.response.close()
    replay.response.close()
    stream.response.close()


def test_a_client_that_goes_away_frees_its_slot(e2e_env, stack_factory):
    stack = stack_factory({**e2e_env, "BANKQ_STREAM_KEEPALIVE_SECONDS": "0.5", "BANKQ_MAX_STREAMS": "1"})
    client = Client(stack.start_api())
    _, alice = client.customer("alice")
    first = Stream(f"{client.base}/events", alice)
    full = client.call("GET", "/events", alice, stream=True)
    assert full.status_code == 503 and full.json()["code"] == "too_many_streams" and full.headers["Retry-After"]
    assert client.call("GET", "/auth/me", alice).status_code == 200  # ordinary requests still answer
    first.response.close()
    deadline = time.monotonic() + 10
    while (again := client.call("GET", "/events", alice, stream=True)).status_code == 503:
        assert time.monotonic() < deadline, "the slot of a closed stream was never freed"
        time.sleep(0.2)
    assert again.status_code == 200
    again.close()


def open_raw_stream(base: str, token: str) -> socket.socket:
    """An event stream on a bare socket (hundreds of them cost no thread here): returns once the retry hint came."""
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    sock.sendall(f"GET {url.path}/events HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    head = b""
    while b"retry:" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    assert head.split(b" ", 2)[1] == b"200", head[:200]
    return sock


def test_hundreds_of_open_streams_leave_ordinary_requests_their_threads(e2e_env, stack_factory):
    """The API process runs 8 request threads (start_api): 300 streams get threads of their own, requests still
    answer, every stream of the owner gets the transfer's events, and the 301st stream is refused."""
    stack = stack_factory({**e2e_env, "BANKQ_MAX_STREAMS": "300", "BANKQ_STREAM_KEEPALIVE_SECONDS": "5"})
    client = Client(stack.start_api())
    stack.start_worker()
    admin = client.login(*ADMIN)
    _, alice = client.customer("alice")
    _, bob = client.customer("bob")
    source, destination = client.account(alice), client.account(bob)
    client.deposit(admin, source, "10.00", "fund")
    streams = [open_raw_stream(client.base, alice if n % 10 == 0 else bob) for n in range(300)]
    try:
        full = client.call("GET", "/events", bob, stream=True)
        assert full.status_code == 503 and full.json()["code"] == "too_many_streams"
        slowest = 0.0
        for _ in range(20):
            started = time.monotonic()
            assert client.call("GET", "/auth/me", alice).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 2, f"an ordinary request took {slowest:.2f}s with 300 streams open"

        job = client.transfer(alice, "many", source, destination, "1.00").json()["id"]
        assert client.wait_job(alice, job)["status"] == "succeeded"
        for sock in streams[::10]:  # alice's thirty streams: each gets the job's events
            got = b""
            while got.count(b"event: job") < 2:
                chunk = sock.recv(65536)
                assert chunk, got
                got += chunk
            assert job.encode() in got and b'"succeeded"' in got
        assert client.call("GET", "/auth/me", alice).status_code == 200
    finally:
        for sock in streams:
            sock.close()
