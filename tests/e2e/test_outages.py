"""The API through a PostgreSQL restart: 503 with Retry-After while the database is down (never a 500, never a
hang), accepting again within 5 s of its return. Also a worker and beat through a Redis outage without the
chaos test's load: the accepted job is posted once Redis is back, with no process restarted."""

from __future__ import annotations

import time

import pytest
import requests

from core.bank import Bank
from core.settings import Settings
from core.setup import prepare
from tests import servers
from tests.e2e.stack import ADMIN, Client, Stack, real_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def prepared(own_servers, tmp_path) -> tuple[servers.Server, servers.Server, dict[str, str]]:
    pg, redis = own_servers
    env = real_env(pg.url, redis.url, tmp_path / "data")
    bank = Bank(Settings.from_env(env))
    prepare(bank)
    bank.db.dispose()
    return pg, redis, env


def test_api_answers_503_while_postgres_is_down_and_accepts_within_5_s_after(prepared, tmp_path):
    pg, _, env = prepared
    stack = Stack(env, tmp_path)
    try:
        client = Client(stack.start_api())
        _, alice = client.customer("alice")
        _, bob = client.customer("bob")
        source, destination = client.account(alice), client.account(bob)

        pg.halt()
        for method, path, body in (
            ("POST", "/transfers", {"source_account_id": source, "destination_account_id": destination,
                                    "amount": "1.00", "currency": "EUR"}),
            ("GET", f"/accounts/{source}", None),
            ("GET", "/jobs", None),
        ):
            started = time.monotonic()
            answer = client.call(method, path, alice, "during-outage" if body else None, json=body)
            assert answer.status_code == 503, (path, answer.status_code, answer.text)
            assert answer.headers["Content-Type"] == "application/problem+json"
            assert answer.json()["code"] == "database_unavailable"
            assert int(answer.headers["Retry-After"]) > 0
            assert time.monotonic() - started < 10
        ready = requests.get(f"{stack.base}/ready", timeout=10)
        assert ready.status_code == 503 and "database" in ready.json()["failed"]

        pg.resume()
        back = time.monotonic()
        while True:
            answer = client.transfer(alice, "after-restart", source, destination, "1.00")
            if answer.status_code == 202 or time.monotonic() - back > 5:
                break
            assert answer.status_code == 503, answer.text
            time.sleep(0.1)
        assert answer.status_code == 202, f"still {answer.status_code} {time.monotonic() - back:.1f} s after"
        assert "Traceback" not in stack.log("api")
    finally:
        stack.stop_all()


def test_worker_and_beat_ride_out_a_redis_outage(prepared, tmp_path):
    _, redis, env = prepared
    stack = Stack(env, tmp_path)
    try:
        client = Client(stack.start_api())
        stack.start_worker()
        stack.start_beat()
        admin = client.login(*ADMIN)
        _, alice = client.customer("alice")
        account = client.account(alice)

        redis.halt()
        deposit = client.call("POST", "/deposits", admin, "in-the-dark",
                              json={"account_id": account, "amount": "7.00", "currency": "EUR"})
        assert deposit.status_code == 202, deposit.text  # accepted into PostgreSQL; the outbox holds the message
        time.sleep(12)
        assert all(proc.poll() is None for proc in stack.procs.values()), "a process died of the outage"
        redis.resume()
        assert client.wait_job(admin, deposit.json()["id"], timeout=60)["status"] == "succeeded"
        assert client.balance(alice, account) == "7.00"
        assert all(proc.poll() is None for proc in stack.procs.values())
        beat = stack.log("beat")
        assert "beat: Redis unavailable" in beat and "beat: Redis answers again; ticking resumed" in beat, beat[-3000:]
    finally:
        stack.stop_all()
