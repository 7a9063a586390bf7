"""Server-Sent Event streams over the Flask test client, on real PostgreSQL: replay, live delivery, isolation, the
stream cap, keep-alives, token expiry, and ids that commit out of order."""

from __future__ import annotations

import copy
import dataclasses
import json
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from sqlalchemy import update

from api import create_app
from api.streams import OPEN_STREAMS
from core.bank import Bank
from core.events import events_after
from core.models import Job
from core.transfers import post_transfer_jobs
from tests.support import accept_transfer, auth_headers, make_user, open_account


def parse(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            frame: dict[str, Any] = {}
            for line in block.decode().split("\n"):
                name, _, value = line.partition(":")
                frame[name or "comment"] = value.strip()
            yield frame


class Reader:
    """Reads a streamed response in a thread; frames arrive on a queue with their arrival time."""

    def __init__(self, response: Any) -> None:
        assert response.status_code == 200, response.get_data(as_text=True)
        self.response = response
        self.frames: queue.Queue[tuple[float, dict[str, Any] | None]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for frame in parse(self.response.response):
            self.frames.put((time.monotonic(), frame))
        self.frames.put((time.monotonic(), None))

    def next(self, timeout: float = 10) -> dict[str, Any] | None:
        return self.frames.get(timeout=timeout)[1]

    def events(self, n: int, timeout: float = 10) -> list[tuple[float, dict[str, Any]]]:
        found = []
        deadline = time.monotonic() + timeout
        while len(found) < n:
            at, frame = self.frames.get(timeout=max(0.01, deadline - time.monotonic()))
            assert frame is not None, f"stream ended after {found}"
            if frame.get("event") == "job":
                found.append((at, frame))
        return found

    def quiet_for(self, seconds: float) -> bool:
        """No event arrived within seconds (keep-alives do not count)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = self.frames.get(timeout=left)[1]
            except queue.Empty:
                return True
            if frame is None or frame.get("event") == "job":
                return False
        return True

    def ended(self, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.frames.get(timeout=max(0.01, deadline - time.monotonic()))[1] is None:
                return True
        return False


def app_with(bank: Bank, **settings: Any):  # type: ignore[no-untyped-def]
    tuned = copy.copy(bank)
    tuned.settings = dataclasses.replace(bank.settings, **settings)
    application = create_app(bank=tuned)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def stream_app(bank):  # type: ignore[no-untyped-def]
    application = app_with(bank, stream_keepalive_seconds=0.3)
    yield application
    application.extensions["bankq_streams"].close()  # ends whatever stream a test left open


@pytest.fixture
def world(bank, stream_app):  # type: ignore[no-untyped-def]
    alice, bob, mallory = make_user(bank), make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    client = stream_app.test_client()
    return {"alice": alice, "mallory": mallory, "source": source, "destination": destination, "client": client,
            "headers": auth_headers(client, alice), "mallory_headers": auth_headers(client, mallory)}


def ids(frames: list[tuple[float, dict[str, Any]]]) -> list[int]:
    return [int(f["id"]) for _, f in frames]


def test_replay_after_last_event_id_in_header_or_query(bank, world):
    alice, client, headers = world["alice"], world["client"], world["headers"]
    first = accept_transfer(bank, alice, world["source"], world["destination"], key="r1").body["id"]
    post_transfer_jobs(bank.db, first)
    second = accept_transfer(bank, alice, world["source"], world["destination"], key="r2").body["id"]
    queued, succeeded, later = events_after(bank.db, alice)

    whole = Reader(client.get(f"/api/v1/jobs/{first}/events", headers=headers, buffered=False))
    assert whole.next()["retry"] == "2000"
    got = whole.events(2)
    assert ids(got) == [queued.id, succeeded.id]
    assert [f["data"] for _, f in got] == [whole_json(queued), whole_json(succeeded)]
    assert whole.ended()  # terminal job: replay, then the stream ends

    for resume in ({"headers": {**headers, "Last-Event-ID": str(queued.id)}},
                   {"headers": headers, "query_string": {"last_event_id": str(queued.id)}}):
        one = Reader(client.get(f"/api/v1/jobs/{first}/events", buffered=False, **resume))
        assert ids(one.events(1)) == [succeeded.id] and one.ended()
        everything = Reader(client.get("/api/v1/events", buffered=False, **resume))
        assert ids(everything.events(2)) == [succeeded.id, later.id] and everything.quiet_for(0.5)
    caught_up = Reader(client.get(f"/api/v1/jobs/{first}/events", buffered=False,
                                  headers={**headers, "Last-Event-ID": str(succeeded.id)}))
    assert caught_up.ended()  # nothing after the terminal event: ends at once, not open forever
    assert second


def whole_json(event: Any) -> str:
    return json.dumps(event.job, separators=(",", ":"))


def job_of(frame: dict[str, Any]) -> dict[str, Any]:
    return json.loads(frame["data"])  # type: ignore[no-any-return]


def test_live_events_arrive_on_both_streams_and_the_job_stream_ends_after_its_terminal_event(bank, world, capsys):
    alice, client, headers = world["alice"], world["client"], world["headers"]
    everything = Reader(client.get("/api/v1/events", headers=headers, buffered=False))
    assert everything.next()["retry"]
    delays = []
    for n in range(5):
        accepted_at = time.monotonic()
        job_id = accept_transfer(bank, alice, world["source"], world["destination"], key=f"live-{n}").body["id"]
        committed = time.monotonic()
        (queued_at, queued), = everything.events(1)
        one = Reader(client.get(f"/api/v1/jobs/{job_id}/events", headers=headers, buffered=False))
        posting = time.monotonic()
        post_transfer_jobs(bank.db, job_id)
        posted = time.monotonic()
        (done_at, done), = everything.events(1)
        assert (queued["data"].count('"queued"'), done["data"].count('"succeeded"')) == (1, 1)
        assert [job_of(f)["status"] for _, f in one.events(2)] == ["queued", "succeeded"] and one.ended()
        delays += [queued_at - committed, done_at - posted]
        assert queued_at - accepted_at < 2 and done_at - posting < 2
    with capsys.disabled():
        print(f"\nSSE commit-to-arrival on PostgreSQL (Redis wake-up): max {max(delays) * 1000:.1f} ms, "
              f"median {sorted(delays)[len(delays) // 2] * 1000:.1f} ms over {len(delays)} events")


def test_nobody_sees_another_users_events(bank, world):
    alice, client = world["alice"], world["client"]
    job_id = accept_transfer(bank, alice, world["source"], world["destination"], key="iso").body["id"]
    hidden = client.get(f"/api/v1/jobs/{job_id}/events", headers=world["mallory_headers"], buffered=False)
    assert hidden.status_code == 404 and hidden.get_json()["code"] == "job_not_found"
    theirs = Reader(client.get("/api/v1/events", headers=world["mallory_headers"], buffered=False))
    post_transfer_jobs(bank.db, job_id)
    assert theirs.quiet_for(1.0)  # keep-alives only

    admin = make_user(bank, role="admin")
    seen = Reader(client.get(f"/api/v1/jobs/{job_id}/events", headers=auth_headers(client, admin), buffered=False))
    assert [job_of(f)["id"] for _, f in seen.events(2)] == [job_id, job_id] and seen.ended()


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", " 7", "99999999999999999999", "0x10"])
def test_an_invalid_last_event_id_is_a_400(world, bad):
    client, headers = world["client"], world["headers"]
    for answer in (client.get("/api/v1/events", headers={**headers, "Last-Event-ID": bad}),
                   client.get("/api/v1/events", headers=headers, query_string={"last_event_id": bad})):
        assert answer.status_code == 400 and answer.mimetype == "application/problem+json"
        assert answer.get_json()["code"] == "invalid_last_event_id"


def test_no_stream_without_a_live_token(world):
    client, headers = world["client"], world["headers"]
    assert client.get("/api/v1/events").status_code == 401
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    revoked = client.get("/api/v1/events", headers=headers)
    assert revoked.status_code == 401 and revoked.get_json()["code"] == "token_revoked"


def test_keep_alives_headers_and_the_stream_cap(bank, world):
    application = app_with(bank, max_streams=2, stream_keepalive_seconds=0.2)
    client, headers = application.test_client(), world["headers"]
    try:
        first = client.get("/api/v1/events", headers=headers, buffered=False)
        assert first.mimetype == "text/event-stream"
        assert (first.headers["Cache-Control"], first.headers["X-Accel-Buffering"]) == ("no-cache", "no")
        reader = Reader(first)
        started = time.monotonic()
        assert reader.next()["retry"] and reader.next(2)["comment"] == "keep-alive"
        assert reader.next(2)["comment"] == "keep-alive" and time.monotonic() - started < 1.5

        gauge_before = OPEN_STREAMS._value.get()
        second = client.get("/api/v1/events", headers=headers, buffered=False)
        assert OPEN_STREAMS._value.get() == gauge_before + 1
        full = client.get("/api/v1/events", headers=headers, buffered=False)
        assert full.status_code == 503 and full.get_json()["code"] == "too_many_streams"
        assert int(full.headers["Retry-After"]) > 0
        second.close()  # never read: closing the response still frees its slot
        assert OPEN_STREAMS._value.get() == gauge_before
        third = client.get("/api/v1/events", headers=headers, buffered=False)
        assert third.status_code == 200
        assert application.extensions["bankq_streams"].gate.open == 2
        third.close()
    finally:
        application.extensions["bankq_streams"].close()
    assert reader.ended()
    assert application.extensions["bankq_streams"].gate.open == 0


def test_the_stream_ends_when_its_token_expires(bank, world):
    application = app_with(bank, access_token_seconds=2, stream_keepalive_seconds=0.2)
    client = application.test_client()
    try:
        started = time.monotonic()
        reader = Reader(client.get("/api/v1/events", headers=auth_headers(client, world["alice"]), buffered=False))
        assert reader.ended(timeout=6)
        assert 0.5 < time.monotonic() - started < 4
    finally:
        application.extensions["bankq_streams"].close()


def test_an_event_id_is_sent_only_once_every_lower_id_is_final(bank, world):
    """Two workers: the one holding the lower event id commits last. The stream must wait for it, or a client
    resuming after the higher id would never get the lower one."""
    alice, client, headers = world["alice"], world["client"], world["headers"]
    slow, fast = (accept_transfer(bank, alice, world["source"], world["destination"], key=k).body["id"]
                  for k in ("slow", "fast"))
    reader = Reader(client.get("/api/v1/events", headers={**headers, "Last-Event-ID": str(
        events_after(bank.db, alice)[-1].id)}, buffered=False))
    assert reader.next()["retry"]
    with bank.db.transaction() as s:
        s.execute(update(Job).where(Job.id == slow).values(status="running"))  # takes the lower id, holds it
        with bank.db.transaction() as other:
            other.execute(update(Job).where(Job.id == fast).values(status="running"))
        assert reader.quiet_for(1.0)
    got = reader.events(2)
    assert [job_of(f)["id"] for _, f in got] == [slow, fast]
    assert ids(got) == sorted(ids(got))


def test_streams_of_one_user_share_its_look_up_and_all_end_once_it_is_disabled(bank, world):
    from api.streams import StreamUsers, token_check
    from core.models import User

    alice = world["alice"]
    claims = {"sub": alice.id, "tv": alice.token_version, "jti": "stream-test", "exp": time.time() + 600}
    users = StreamUsers(bank, seconds=0.5)
    checks = [token_check(bank, claims, users=users, recheck_seconds=0) for _ in range(50)]
    assert all(check() for check in checks)
    assert users.reads == 1  # fifty streams, one look-up
    with bank.db.transaction() as s:
        s.execute(update(User).where(User.id == alice.id).values(status="suspended"))
    time.sleep(0.6)
    assert not any(check() for check in checks)
    assert users.reads == 2
    forged = token_check(bank, {**claims, "sub": "no-such-user"}, users=users, recheck_seconds=0)
    assert not forged()
