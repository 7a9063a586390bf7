"""`make run`'s configuration: no servers, SQLite + the filesystem broker, real processes, Ctrl-C stops all."""

from __future__ import annotations

import signal
import time

import pytest

from tests.e2e.stack import ADMIN, Client, Stack, alive, descendants, embedded_env

pytestmark = pytest.mark.e2e


def test_embedded_default_serves_a_transfer_and_stops_cleanly(tmp_path):
    stack = Stack(embedded_env(tmp_path / "var"), tmp_path)
    try:
        client = Client(stack.start_launcher())
        assert (tmp_path / "var" / "bankq.db").exists()
        admin = client.login(*ADMIN)
        _, alice = client.customer("alice")
        _, bob = client.customer("bob")
        source, destination = client.account(alice), client.account(bob, "EUR")
        deposit = client.call(
            "POST", "/deposits", admin, "d1", json={"account_id": source, "amount": "30.00", "currency": "EUR"}
        )
        assert client.wait_job(admin, deposit.json()["id"])["status"] == "succeeded"
        transfer = client.call(
            "POST",
            "/transfers",
            alice,
            "t1",
            json={
                "source_account_id": source,
                "destination_account_id": destination,
                "amount": "12.50",
                "currency": "EUR",
            },
        )
        assert transfer.status_code == 202
        assert client.wait_job(alice, transfer.json()["id"])["status"] == "succeeded"
        assert client.balance(bob, destination) == "12.50"
        assert client.call("GET", "/admin/ledger/check", admin).json()["ok"]
        queues = client.call("GET", "/admin/queues", admin).json()  # a worker runs, but nobody can ping it here
        assert queues["workers"] is None and queues["workers_status"] == "no_remote_control", queues

        launcher = stack.procs["launcher"]
        children = descendants(launcher.pid)
        assert len(children) >= 3  # api, worker, beat (and their own children)
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(40) == 0
        deadline = time.monotonic() + 20
        while any(alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in children if alive(p)], stack.log("launcher")[-3000:]
    finally:
        stack.stop_all()
