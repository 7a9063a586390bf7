"""A running bankq (gunicorn API, Celery worker and beat, as `make run` starts them on PostgreSQL + Redis) on a
scratch database, driven over HTTP by bench.load in a process of its own, with the database and the CPU of every process
read at the moments the load's measuring window opens and closes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import redis
import requests

from bench.bankq_stack import (
    CURRENCY,
    Customer,
    bankq_env,
    data_dir,
    libpq_connect,
    money_conserved,
    new_bank,
    open_customers,
    transfer_job_counts,
)
from bench.stack import ROOT, Process, Stack, wait_for_http
from tasks.launcher import commands
from tests import servers, support

FINISHED = ("succeeded", "failed", "cancelled")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; q in [0, 100]."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Shape:
    api_processes: int = 2
    web_threads: int = 8
    worker_processes: int = 2


@dataclass
class Bankq:
    base: str
    port: int
    database_url: str
    customers: list[Customer]
    tokens: list[str]
    api: Process
    worker: Process
    beat: Process
    shape: Shape

    def stop(self) -> None:
        self.beat.stop()
        self.worker.stop()
        self.api.stop()

    def check_alive(self) -> None:
        for process in (self.api, self.worker, self.beat):
            process.check_alive()


def start_bankq(stack: Stack, name: str, shape: Shape, customers: int) -> Bankq:
    database_url = stack.scratch_database(f"bankq_bench_{name}")
    env = bankq_env(stack, database_url, name)
    port = servers.free_port()
    env.update({
        "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(shape.api_processes),
        # The worker takes the receipts (notify) and beat's ticks (default) too, so their cost is in the figures.
        "WEB_THREADS": str(shape.web_threads), "WORKER_QUEUES": "transfers,notify,default",
        "WORKER_CONCURRENCY": str(shape.worker_processes), "LOG_LEVEL": "WARNING",
        "BANKQ_RATE_LIMITS_ENABLED": "false",
    })
    metrics = data_dir(env) / "prometheus"
    metrics.mkdir(parents=True, exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    redis.Redis.from_url(stack.redis_url).flushdb()  # nothing of the last stack's beat or queues
    bank = new_bank(stack, env)
    people = open_customers(bank, customers)
    bank.db.dispose()
    shapes = commands(env)
    api = stack.start(f"{name}-api", shapes["api"], env)
    worker = stack.start(f"{name}-worker", shapes["worker"], env)
    beat = stack.start(f"{name}-beat", shapes["beat"], env)
    base = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base}/health", api)
    tokens = [_login(base, c.user.username) for c in people]
    return Bankq(base, port, database_url, people, tokens, api, worker, beat, shape)


def _login(base: str, username: str) -> str:
    answer = requests.post(f"{base}/api/v1/auth/login", json={"username": username, "password": support.PASSWORD},
                           timeout=30)
    answer.raise_for_status()
    return answer.json()["access_token"]  # type: ignore[no-any-return]


def transfer_bodies(bankq: Bankq, index: int, n: int = 16) -> list[dict[str, Any]]:
    """Single transfers of 1.00 from customer `index` to the others in turn."""
    me = bankq.customers[index]
    others = [c.account_id for c in bankq.customers if c is not me]
    return [{"source_account_id": me.account_id, "destination_account_id": others[i % len(others)],
             "amount": "1.00", "currency": CURRENCY} for i in range(n)]


def batch_bodies(bankq: Bankq, index: int, items: int) -> list[dict[str, Any]]:
    """One batch of `items` independent transfers of 0.01 from customer `index`."""
    me = bankq.customers[index]
    others = [c.account_id for c in bankq.customers if c is not me]
    return [{"atomic": False, "items": [
        {"source_account_id": me.account_id, "destination_account_id": others[i % len(others)], "amount": "0.01",
         "currency": CURRENCY} for i in range(items)]}]


@dataclass
class Window:
    """What one load run measured."""

    mode: str
    connections: int
    rate: float | None
    seconds: float
    sent: int
    accepted: int
    accepted_per_second: float
    p50_ms: float
    p99_ms: float
    posted: int  # transfers posted while the window was open
    posted_per_second: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    retries: int = 0


def drive(stack: Stack, bankq: Bankq, *, bodies: list[list[dict[str, Any]]], path: str = "/api/v1/transfers",
          mode: str = "closed", connections: int = 16, rate: float | None = None, warmup: float = 2.0,
          seconds: float = 10.0, run: str = "load", paths: list[list[str]] | None = None) -> Window:
    """POST each customer's bodies in turn (or GET their `paths`) under the given load; measure one window."""
    clients = [{"token": t, "bodies": b} for t, b in zip(bankq.tokens, bodies, strict=False)]
    for client, own in zip(clients, paths or [], strict=False):
        client["paths"] = own
    job = {"host": "127.0.0.1", "port": bankq.port, "path": path, "connections": connections, "mode": mode,
           "rate": rate, "warmup": warmup, "seconds": seconds, "run": f"{run}-{time.monotonic_ns()}",
           "clients": clients}
    load = subprocess.Popen([sys.executable, "-m", "bench.load"], cwd=ROOT, text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    stack.callback(load.kill)
    assert load.stdin is not None and load.stdout is not None
    load.stdin.write(json.dumps(job) + "\n")
    load.stdin.flush()
    meter = stack.cpu_meter(api=bankq.api, worker=bankq.worker, beat=bankq.beat)
    assert load.stdout.readline().strip() == "window start"
    with libpq_connect(bankq.database_url) as conn:
        before = posted_count(conn)
        meter.start()
        assert load.stdout.readline().strip() == "window end"
        cpu = meter.stop()
        after = posted_count(conn)
    result = json.loads(load.stdout.readline())
    load.wait(30)
    bankq.check_alive()
    latencies = result["latencies_ms"]
    return Window(mode=mode, connections=connections, rate=rate, seconds=seconds, sent=result["sent"],
                  accepted=result["accepted"], accepted_per_second=result["accepted"] / seconds,
                  p50_ms=percentile(latencies, 50), p99_ms=percentile(latencies, 99), posted=after - before,
                  posted_per_second=(after - before) / seconds, cpu_seconds=cpu, statuses=result["statuses"],
                  errors=result["errors"], retries=result["retries"])


def posted_count(conn: Any) -> int:
    row = conn.execute("SELECT count(*) FROM transfers WHERE status = 'posted'").fetchone()
    return int(row[0])


def drained(bankq: Bankq, timeout: float = 180.0) -> dict[str, int]:
    """Wait until no transfer or batch job is waiting or running; return the transfer jobs by status."""
    deadline = time.monotonic() + timeout
    with libpq_connect(bankq.database_url) as conn:
        while True:
            waiting = conn.execute(
                "SELECT count(*) FROM jobs WHERE kind IN ('transfer', 'transfer_batch') "
                "AND status IN ('queued', 'running')").fetchone()[0]
            if not waiting:
                return transfer_job_counts(conn)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{waiting} transfer jobs unfinished after {timeout}s\n{bankq.worker.log_tail()}")
            bankq.check_alive()
            time.sleep(0.1)


def conserved(bankq: Bankq) -> bool:
    with libpq_connect(bankq.database_url) as conn:
        return money_conserved(conn, len(bankq.customers))
