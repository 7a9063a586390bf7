"""`.venv/bin/python -m bench.sse_streams`: event streams and webhooks under load, measured in one run.

The real stack as `make run` starts it on PostgreSQL + Redis (two gunicorn processes with their default threads and
stream cap, one worker). Then:

1. transfers posted per second with no stream open (closed loop: client threads post back to back);
2. BENCH_SSE_STREAMS (1000) streams opened by a separate asyncio process (bench.sse_holder): 4 per transferring
   customer, the rest spread over idle customers, as pages left open are;
3. the same closed loop again with every stream open: the ratio to (1) is the cost of holding them;
4. an open loop offering BENCH_SSE_RATE (200) transfers/s with the streams open and a webhook endpoint per
   transferring customer (a local receiver answering 204): for every terminal event a stream receives, and for
   every webhook's first attempt, the time from the job's updated_at (written by the worker just before its commit)
   to the arrival, p50/p99/max, and the webhooks process's CPU per delivery over that phase.

BENCH_SSE_CLOSED_LOOPS=0 skips (1) and (3), for measuring push latency alone.

Ratios come from one run on one machine; absolute figures are printed to explain them, not to compare machines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import requests

from bench.bankq_http import percentile
from bench.bankq_stack import (
    CURRENCY,
    Customer,
    bankq_env,
    libpq_connect,
    new_bank,
    open_customers,
    transfer_job_counts,
)
from bench.cpu import CpuMeter
from bench.stack import ROOT, Stack, phase, wait_for_http
from tasks.launcher import commands
from tests import servers, support
from tests.receiver import Receiver

ACTIVE = 16  # transferring customers, one client thread each
STREAMS_PER_ACTIVE = 4
IDLE_USERS = 24


@dataclass(frozen=True)
class Config:
    streams: int
    rate: float
    seconds: float
    closed_loops: bool = True

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        return cls(streams=int(env.get("BENCH_SSE_STREAMS") or 1000), rate=float(env.get("BENCH_SSE_RATE") or 200),
                   seconds=float(env.get("BENCH_SSE_SECONDS") or 15),
                   closed_loops=env.get("BENCH_SSE_CLOSED_LOOPS", "1") != "0")


class Load:
    """Client threads posting transfers: back to back (rate None) or on a fixed schedule sharing `rate`."""

    def __init__(self, base: str, customers: list[Customer], tokens: dict[str, str], rate: float | None) -> None:
        self.base, self.customers, self.tokens, self.rate = base, customers, tokens, rate
        self.stop = threading.Event()
        self.sent = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(len(customers))]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(60)

    def _run(self, i: int) -> None:
        me = self.customers[i]
        others = [c.account_id for c in self.customers if c is not me]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.tokens[me.user.username]}"
        interval = len(self.customers) / self.rate if self.rate else 0.0
        due = time.monotonic() + interval * i / len(self.customers)
        n = 0
        while not self.stop.is_set():
            if interval:
                pause = due - time.monotonic()
                if pause > 0 and self.stop.wait(pause):
                    return
                due += interval
            body = {"source_account_id": me.account_id, "destination_account_id": others[n % len(others)],
                    "amount": "1.00", "currency": CURRENCY}
            n += 1
            try:
                answer = session.post(f"{self.base}/api/v1/transfers", json=body, timeout=60,
                                      headers={"Idempotency-Key": uuid.uuid4().hex})
                ok = answer.status_code == 202
            except requests.RequestException as exc:
                ok, answer = False, exc  # type: ignore[assignment]
            with self._lock:
                self.sent += ok
                if not ok and len(self.errors) < 5:
                    self.errors.append(str(getattr(answer, "text", answer))[:200])


def finished(database_url: str) -> int:
    with libpq_connect(database_url) as conn:
        counts = transfer_job_counts(conn)
    return sum(counts.get(s, 0) for s in ("succeeded", "failed", "cancelled"))


def all_finished(database_url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with libpq_connect(database_url) as conn:
            counts = transfer_job_counts(conn)
        if not counts.get("queued") and not counts.get("running"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"transfers still unfinished after {timeout}s: {counts}")


@dataclass(frozen=True)
class Window:
    per_second: float  # transfers finished per second
    cpu_ms: dict[str, float]  # CPU milliseconds per finished transfer, by process group


def posted_per_second(base: str, database_url: str, customers: list[Customer], tokens: dict[str, str],
                      seconds: float, meter: CpuMeter) -> Window:
    """Transfers finished per second by the worker under a closed loop, after a 3 s warm-up, and what each cost in
    CPU (which the machine's other load does not inflate the way it does the rate)."""
    with Load(base, customers, tokens, None) as load:
        time.sleep(3)
        before, started = finished(database_url), time.monotonic()
        meter.start()
        time.sleep(seconds)
        spent = meter.stop()
        after, elapsed = finished(database_url), time.monotonic() - started
    if load.errors:
        print(f"  errors: {load.errors}", file=sys.stderr)
    all_finished(database_url)
    done = max(1, after - before)
    return Window((after - before) / elapsed, {k: v * 1000 / done for k, v in spent.items()})


def login(base: str, username: str) -> str:
    answer = requests.post(f"{base}/api/v1/auth/login", json={"username": username, "password": support.PASSWORD},
                           timeout=30)
    answer.raise_for_status()
    return answer.json()["access_token"]  # type: ignore[no-any-return]


def main() -> int:
    config = Config.from_env()
    with Stack() as stack:
        with phase("starting PostgreSQL and Redis"):
            stack.start_servers(os.environ.get("BENCH_DATABASE_URL"), os.environ.get("BENCH_REDIS_URL"))
        database_url = stack.scratch_database("bankq_bench_sse")
        env = bankq_env(stack, database_url, "sse")
        port = servers.free_port()
        env.update({"HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "WARNING",
                    "BANKQ_RATE_LIMITS_ENABLED": "false", "WORKER_QUEUES": "transfers,default",
                    "BANKQ_WEBHOOK_ALLOW_PRIVATE": "true"})
        bank = new_bank(stack, env)
        customers = open_customers(bank, ACTIVE)
        idle = [support.make_user(bank).username for _ in range(IDLE_USERS)]
        bank.db.dispose()
        shapes = commands(env)
        api, worker = stack.start("api", shapes["api"], env), stack.start("worker", shapes["worker"], env)
        webhooks = stack.start("webhooks", shapes["webhooks"], env)
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/health", api)
        tokens = {u: login(base, u) for u in [c.user.username for c in customers] + idle}

        meter = stack.cpu_meter(api=api, worker=worker)
        without = with_streams = None
        if config.closed_loops:
            with phase(f"closed loop, no stream open ({config.seconds:.0f} s)"):
                without = posted_per_second(base, database_url, customers, tokens, config.seconds, meter)
        streams = [tokens[c.user.username] for c in customers for _ in range(STREAMS_PER_ACTIVE)]
        streams += [tokens[idle[i % len(idle)]] for i in range(max(0, config.streams - len(streams)))]
        with phase(f"opening {len(streams)} event streams"):
            holder = subprocess.Popen([sys.executable, "-m", "bench.sse_holder", base], cwd=ROOT, text=True,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            stack.callback(holder.kill)
            assert holder.stdin is not None and holder.stdout is not None
            holder.stdin.write(json.dumps({"streams": streams}) + "\n")
            holder.stdin.flush()
            opened = holder.stdout.readline().strip()
            print(f"  {opened}")
        if config.closed_loops:
            with phase(f"closed loop, {len(streams)} streams open ({config.seconds:.0f} s)"):
                with_streams = posted_per_second(base, database_url, customers, tokens, config.seconds, meter)
        receiver = Receiver()
        stack.callback(receiver.close)
        for c in customers:
            answer = requests.post(f"{base}/api/v1/webhooks", timeout=30,
                                   headers={"Authorization": f"Bearer {tokens[c.user.username]}"},
                                   json={"url": receiver.url, "events": ["job.succeeded", "job.failed"]})
            answer.raise_for_status()
        with phase(f"open loop at {config.rate:.0f}/s offered, {len(streams)} streams open, {len(customers)} webhook "
                   f"endpoints ({config.seconds:.0f} s)"):
            holder.stdin.write("mark\n")
            holder.stdin.flush()
            sender = stack.cpu_meter(webhooks=webhooks)
            sender.start()
            with Load(base, customers, tokens, config.rate) as load:
                began = time.monotonic()
                time.sleep(config.seconds)
            offered = load.sent / (time.monotonic() - began)
            all_finished(database_url)
            time.sleep(1)
            holder.stdin.write("stop\n")
            holder.stdin.flush()
            measured = json.loads(holder.stdout.readline())
            holder.stdin.write("quit\n")
            holder.stdin.flush()
            holder.wait(30)
            receiver.wait_for(load.sent, timeout=60)
            sender_cpu = sender.stop()["webhooks"]
            first_attempts = first_attempt_latencies(receiver)
        webhooks.stop()
        worker.stop()
        api.stop()

    latencies = measured["latencies_ms"]
    print()
    print(f"{'':<52}{'figure':>12}")
    print(f"{'streams held open (asked for)':<52}{measured['open']:>7} / {len(streams)}")
    if without is not None and with_streams is not None:
        print(f"{'transfers finished/s, no stream open':<52}{without.per_second:>12.1f}")
        print(f"{'transfers finished/s, streams open':<52}{with_streams.per_second:>12.1f}")
        print(f"{'  ratio (target >= 0.90)':<52}{with_streams.per_second / without.per_second:>12.2f}")
        for group in ("api", "worker", "postgres"):
            if group in without.cpu_ms:
                a, b = without.cpu_ms[group], with_streams.cpu_ms.get(group, 0.0)
                label = f"CPU ms per transfer, {group}: none open -> open"
                print(f"{label:<52}{a:>5.1f} -> {b:<5.1f} ({b / max(a, 1e-9):.2f}x)")
    print(f"{'open loop: transfers accepted/s (offered ' + format(config.rate, '.0f') + '/s)':<52}{offered:>12.1f}")
    print(f"{'terminal events received in the window':<52}{len(latencies):>12}")
    for q in (50, 99):
        print(f"{f'updated_at -> stream arrival p{q} ms (target p99 <= 100)':<52}"
              f"{percentile(latencies, q):>12.1f}")
    print(f"{'updated_at -> stream arrival max ms':<52}{max(latencies, default=0):>12.1f}")
    print(f"{'webhook first attempts received':<52}{len(first_attempts):>12}")
    for q in (50, 99):
        print(f"{f'updated_at -> webhook first attempt p{q} ms (p99 <= 1000)':<52}"
              f"{percentile(first_attempts, q):>12.1f}")
    print(f"{'updated_at -> webhook first attempt max ms':<52}{max(first_attempts, default=0):>12.1f}")
    attempts = max(1, len(receiver.requests))
    print(f"{'webhooks process CPU ms per attempt':<52}{sender_cpu * 1000 / attempts:>12.1f}")
    return 0


def first_attempt_latencies(receiver: Receiver) -> list[float]:
    """Arrival of each event's first attempt minus its job's updated_at, in ms."""
    first: dict[str, float] = {}
    for request in receiver.requests:
        job = json.loads(request.body)["data"]
        finished = datetime.fromisoformat(job["updated_at"]).timestamp()
        first.setdefault(request.headers["webhook-id"], (request.at - finished) * 1000)
    return list(first.values())


if __name__ == "__main__":
    sys.exit(main())
