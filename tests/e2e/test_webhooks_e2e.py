"""Webhooks through the real processes: gunicorn, a transfers worker, the webhooks worker (threads, with its
dispatcher) and beat, PostgreSQL and Redis. A transfer's job.succeeded reaches a receiver on 127.0.0.1 at once (the
dispatcher is woken by the commit; beat's net runs only every 10 s), signed as Standard Webhooks verifies, and an
event whose receiver was down when it happened arrives, once, when the receiver is back."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook as Verifier

from tests.e2e.stack import ADMIN, Client
from tests.receiver import Receiver
from tests.servers import free_port

pytestmark = pytest.mark.e2e


def test_transfer_events_reach_a_receiver_even_one_that_was_down(e2e_env, stack_factory):
    env = {**e2e_env, "BANKQ_WEBHOOK_ALLOW_PRIVATE": "true"}
    stack = stack_factory(env)
    client = Client(stack.start_api())
    stack.start_worker()
    stack.start_webhooks_worker()
    stack.start_beat()
    admin = client.login(*ADMIN)
    _, alice = client.customer("alice")
    _, bob = client.customer("bob")
    source, destination = client.account(alice), client.account(bob)
    client.deposit(admin, source, "100.00", "fund-alice")
    port = free_port()

    with Receiver(port=port) as receiver:
        created = client.call("POST", "/webhooks", alice, json={
            "url": f"http://127.0.0.1:{port}/hooks", "events": ["job.succeeded"]})
        assert created.status_code == 201, created.text
        hook = created.json()
        job = client.transfer(alice, "pay-1", source, destination, "10.00").json()
        assert client.wait_job(alice, job["id"])["status"] == "succeeded"
        finished = time.monotonic()
        [request] = receiver.wait_for(1)
        assert time.monotonic() - finished < 3, "the delivery waited for beat's net instead of the dispatcher"
        event = Verifier(hook["secret"]).verify(request.body, request.headers)
        assert event["type"] == "job.succeeded" and event["data"] == client.call("GET", f"/jobs/{job['id']}",
                                                                                   alice).json()

    # The receiver is down: the first attempt fails, the retry 5 s later finds it back.
    second = client.transfer(alice, "pay-2", source, destination, "5.00").json()
    assert client.wait_job(alice, second["id"])["status"] == "succeeded"
    deadline = time.monotonic() + 30
    while not [a for a in client.call("GET", f"/webhooks/{hook['id']}/deliveries", alice).json()["items"]
               if a["status_code"] is None]:
        assert time.monotonic() < deadline, "the attempt to the stopped receiver was never made"
        time.sleep(0.2)
    with Receiver(port=port) as back:
        [request] = back.wait_for(1, timeout=30)
        time.sleep(1)
        assert len(back.requests) == 1
    event = Verifier(hook["secret"]).verify(request.body, request.headers)
    assert event["data"]["id"] == second["id"]
    attempts = client.call("GET", f"/webhooks/{hook['id']}/deliveries", alice).json()["items"]
    mine = sorted((a["attempt"], a["status_code"]) for a in attempts if a["event_id"] != attempts[-1]["event_id"])
    assert mine == [(1, None), (2, 204)], attempts
    assert "connection refused" in next(a["error"] for a in attempts if a["status_code"] is None)
