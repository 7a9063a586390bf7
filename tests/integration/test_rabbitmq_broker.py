"""RabbitMQ as the broker: a transfer accepted over HTTP goes through the real outbox and publisher to RabbitMQ and
a real worker posts it; remote control and readiness work on AMQP. Redis stays the cache and rate-limit store."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from amqp.exceptions import PreconditionFailed
from celery import Celery
from kombu import Connection

from core import outbox
from tasks import publisher
from tests import servers
from tests.brokers import celery_app_for, reset_amqp_queues
from tests.e2e.stack import Stack
from tests.support import auth_headers, make_user, open_account


def _use_broker(monkeypatch: pytest.MonkeyPatch, url: str) -> Celery:
    """Point the publisher, /ready and workers_report at the broker a process started with this URL would use."""
    app = celery_app_for({"CELERY_BROKER_URL": url})
    monkeypatch.setattr(publisher, "celery", app)
    monkeypatch.setattr(publisher, "_broker_down_until", 0.0)
    return app


@pytest.fixture
def rabbitmq(amqp_server: servers.Server, settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    reset_amqp_queues(amqp_server.url)
    app = _use_broker(monkeypatch, amqp_server.url)
    yield app
    app.close()


def _queue_depth(url: str, name: str) -> int:
    with Connection(url) as conn:
        return int(conn.channel().queue_declare(name, passive=True).message_count)


def test_transfer_goes_through_rabbitmq_to_a_real_worker(bank, client, rabbitmq, amqp_server, tmp_path):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")
    headers = auth_headers(client, alice, **{"Idempotency-Key": "via-rabbitmq"})
    body = {"source_account_id": source, "destination_account_id": destination, "amount": "12.50", "currency": "EUR"}

    accepted = client.post("/api/v1/transfers", headers=headers, json=body)
    assert accepted.status_code == 202, accepted.get_json()
    job_id = accepted.get_json()["id"]
    deadline = time.monotonic() + 10
    while outbox.pending(bank.db) and time.monotonic() < deadline:
        time.sleep(0.05)  # the row goes once RabbitMQ has confirmed the message
    assert outbox.pending(bank.db) == 0
    assert _queue_depth(amqp_server.url, "transfers") == 1  # waiting in RabbitMQ: no worker yet
    with Connection(amqp_server.url) as conn, pytest.raises(PreconditionFailed):
        conn.channel().queue_declare("transfers", durable=False)  # RabbitMQ refuses: the queue is durable

    stack = Stack({"CELERY_BROKER_URL": amqp_server.url}, tmp_path)
    try:
        stack.start_worker("rabbit-worker", queues="transfers", concurrency=1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
            if job["status"] != "queued":
                break
            time.sleep(0.1)
        assert job["status"] == "succeeded", (job, stack.log("rabbit-worker")[-3000:])
        assert client.get(f"/api/v1/accounts/{source}", headers=headers).get_json()["balance"] == "37.50"
        assert _queue_depth(amqp_server.url, "transfers") == 0  # acknowledged after the posting committed

        workers = publisher.workers_report(rabbitmq, timeout=2.0)["workers"]
        assert any(name.startswith("rabbit-worker-") for name in workers)
        publisher.broker_ping()
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.get_json()["checks"]["broker"] == "ok"
    finally:
        stack.stop_all()


def test_ready_reports_a_dead_rabbitmq_quickly(client, settings, monkeypatch):
    app = _use_broker(monkeypatch, f"amqp://guest:guest@127.0.0.1:{servers.free_port()}//")  # nothing listens
    try:
        started = time.monotonic()
        ready = client.get("/ready")
        assert time.monotonic() - started < 5
        assert ready.status_code == 503 and ready.get_json()["failed"] == ["broker"]
        assert "Retry-After" in ready.headers
    finally:
        app.close()
