"""`make run`'s configuration: no servers, SQLite + the filesystem broker, real processes, Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.stack import ADMIN, Client, Stack

pytestmark = pytest.mark.e2e


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            found |= {child} | _children(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def test_embedded_default_serves_a_transfer_and_stops_cleanly(tmp_path):
    env = {
        "BANKQ_DATA_DIR": str(tmp_path / "var"),
        "BANKQ_REQUIRE_KYC": "false",
        "BANKQ_ADMIN_USERNAME": ADMIN[0],
        "BANKQ_ADMIN_PASSWORD": ADMIN[1],
        "WORKER_CONCURRENCY": "1",
        "WEB_CONCURRENCY": "1",
    }
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        env[name] = ""
    stack = Stack(env, tmp_path)
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
        children = _children(launcher.pid)
        assert len(children) >= 3  # api, worker, beat (and their own children)
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(40) == 0
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in children if _alive(p)], stack.log("launcher")[-3000:]
    finally:
        stack.stop_all()
