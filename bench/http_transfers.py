"""bankq over HTTP: the real API (gunicorn) and a real worker; transfers POSTed by client threads.

Accept rate and latency are measured at the client; the end-to-end rate runs from the first POST to the moment
the database shows every job succeeded."""

from __future__ import annotations

import itertools
import math
import threading
import time
import uuid
from dataclasses import dataclass, field

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
    posting_transactions,
    transfer_job_counts,
)
from bench.config import BenchConfig
from bench.stack import Process, Stack, wait_for_http
from tasks.launcher import commands
from tests import servers, support

WARM_UP_PER_CLIENT = 5
ATTEMPTS = 3


@dataclass(frozen=True)
class HttpResult:
    transfers: int
    accepted: int
    clients: int
    accept_per_second: float
    accept_seconds: float
    p50_ms: float
    p99_ms: float
    e2e_per_second: float
    e2e_seconds: float
    failed_jobs: int
    money_conserved: bool
    retries: int
    posting_transactions: int
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; q in [0, 100]."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


class Client(threading.Thread):
    def __init__(self, base: str, customer: Customer, destinations: list[str], run: str) -> None:
        super().__init__(daemon=True)
        self.base, self.customer, self.destinations, self.run_id = base, customer, destinations, run
        self.session = requests.Session()
        self.latencies: list[float] = []
        self.accepted = 0
        self.retries = 0
        self.errors: list[str] = []
        self.last_answer = 0.0
        self.work: itertools.count[int] | None = None
        self.limit = 0
        self.start_gate: threading.Barrier | None = None

    def login(self) -> None:
        answer = self.session.post(f"{self.base}/api/v1/auth/login", timeout=30, json={
            "username": self.customer.user.username, "password": support.PASSWORD})
        answer.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def transfer(self, n: int, key: str) -> None:
        destination = self.destinations[n % len(self.destinations)]
        body = {"source_account_id": self.customer.account_id, "destination_account_id": destination,
                "amount": "1.00", "currency": CURRENCY}
        started = time.perf_counter()
        for attempt in range(ATTEMPTS):
            try:
                answer = self.session.post(f"{self.base}/api/v1/transfers", timeout=60, json=body,
                                           headers={"Idempotency-Key": key})
                break
            except requests.ConnectionError as exc:
                # A kept-alive connection closed under us: what the Idempotency-Key is for. Same key, same body.
                self.retries += 1
                if attempt == ATTEMPTS - 1:
                    self._error(f"{type(exc).__name__}: {exc}")
                    return
        self.last_answer = time.perf_counter()
        self.latencies.append(self.last_answer - started)
        if answer.status_code == 202:
            self.accepted += 1
        else:
            self._error(f"{answer.status_code} {answer.text[:300]}")

    def _error(self, message: str) -> None:
        if len(self.errors) < 5:
            self.errors.append(message)

    def run(self) -> None:
        assert self.work is not None and self.start_gate is not None
        self.start_gate.wait()
        try:
            for n in self.work:
                if n >= self.limit:
                    return
                self.transfer(n, f"{self.run_id}-{n}")
        except Exception as exc:  # reported with the results rather than lost with the thread
            self._error(f"{type(exc).__name__}: {exc}")


def run_http(stack: Stack, config: BenchConfig) -> HttpResult:
    database_url = stack.scratch_database("bankq_bench_http")
    env = bankq_env(stack, database_url, "http")
    port = servers.free_port()
    env.update({
        "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(config.web_workers),
        "WEB_THREADS": str(config.web_threads), "WORKER_QUEUES": "transfers,default",
        "WORKER_CONCURRENCY": str(config.worker_concurrency), "LOG_LEVEL": "WARNING",
    })
    metrics = data_dir(env) / "prometheus"
    metrics.mkdir(parents=True, exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    bank = new_bank(stack, env)
    customers = open_customers(bank, config.clients)
    bank.db.dispose()

    shapes = commands(env)
    api = stack.start("api", shapes["api"], env)
    worker = stack.start("worker", shapes["worker"], env)
    base = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base}/health", api)
    try:
        return _drive(stack, config, base, customers, database_url, api, worker)
    finally:
        worker.stop()
        api.stop()


def _drive(stack: Stack, config: BenchConfig, base: str, customers: list[Customer], database_url: str, api: Process,
           worker: Process) -> HttpResult:
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    accounts = [c.account_id for c in customers]
    clients = [Client(base, c, [a for a in accounts if a != c.account_id] or accounts, run_id) for c in customers]
    with libpq_connect(database_url) as conn:
        for client in clients:
            client.login()
            for n in range(WARM_UP_PER_CLIENT):
                client.transfer(n, f"{run_id}-warm-{client.customer.account_id}-{n}")
        warm = sum(c.accepted for c in clients)
        _wait_terminal(conn, warm, [api, worker], timeout=60)
        warm_transactions = posting_transactions(conn)
        for client in clients:
            client.latencies.clear()
            client.accepted = client.retries = 0

        work = itertools.count()
        gate = threading.Barrier(len(clients) + 1)
        for client in clients:
            client.work, client.limit, client.start_gate = work, config.transfers, gate
            client.start()
        meter = stack.cpu_meter(api=api, worker=worker)
        meter.start()
        gate.wait()
        started = time.perf_counter()
        for client in clients:
            while client.is_alive():
                client.join(0.5)
                api.check_alive()
        accept_end = max(c.last_answer for c in clients)
        accepted = sum(c.accepted for c in clients)
        finished = _wait_terminal(conn, warm + accepted, [api, worker], timeout=config.e2e_timeout)
        cpu = meter.stop()
        counts = transfer_job_counts(conn)
        conserved = money_conserved(conn, len(customers))
        transactions = posting_transactions(conn) - warm_transactions

    latencies = [x for c in clients for x in c.latencies]
    accept_seconds = accept_end - started
    e2e_seconds = finished - started
    return HttpResult(
        transfers=config.transfers, accepted=accepted, clients=len(clients),
        accept_per_second=accepted / accept_seconds, accept_seconds=accept_seconds,
        p50_ms=percentile(latencies, 50) * 1000, p99_ms=percentile(latencies, 99) * 1000,
        e2e_per_second=accepted / e2e_seconds, e2e_seconds=e2e_seconds,
        failed_jobs=counts.get("failed", 0), money_conserved=conserved, cpu_seconds=cpu,
        retries=sum(c.retries for c in clients), posting_transactions=transactions,
        errors=[e for c in clients for e in c.errors][:5],
    )


def _wait_terminal(conn, expected: int, processes: list[Process], timeout: float) -> float:  # type: ignore[no-untyped-def]
    """Poll the truth until `expected` transfer jobs are finished; return the moment they were."""
    deadline = time.monotonic() + timeout
    while True:
        counts = transfer_job_counts(conn)
        if counts.get("succeeded", 0) + counts.get("failed", 0) + counts.get("cancelled", 0) >= expected:
            return time.perf_counter()
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.log_tail()}" for p in processes)
            raise TimeoutError(f"jobs not finished after {timeout}s: {counts} (expected {expected})\n{logs}")
        for p in processes:
            p.check_alive()
        time.sleep(0.02)
