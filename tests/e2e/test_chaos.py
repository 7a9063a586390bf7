"""Chaos: transfers from concurrent clients while worker processes are killed and Redis and PostgreSQL restart.

The stack is `make run`'s supervised launcher on PostgreSQL + Redis servers this test owns. Clients retry every
transfer on its own Idempotency-Key until it is accepted, as a careful client would. Afterwards the bank invariant
must hold: every accepted job terminal within a minute of the last fault, money conserved, nothing posted twice,
one job per key, the ledger check ok, no 500 seen by any client, and the stack still serving.

`make test` runs a reduced size; `make chaos` (BANKQ_CHAOS=full) the full one: 10 worker kills, 2 Redis restarts
(one a 60 s outage) and a PostgreSQL restart during at least 3,000 transfers."""

from __future__ import annotations

import itertools
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
import pytest
import requests

from tests import servers
from tests.e2e.stack import ADMIN, Client, Stack, children, cmdline, real_env
from tests.support import libpq

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Size:
    transfers: int
    clients: int
    pool_kills: int
    main_kills: int
    redis_outages: tuple[float, ...]
    postgres_outage: float
    gap: float  # seconds of load between faults
    rate: float  # transfers per second offered by all clients together, as steady traffic would

    def faults(self) -> list[tuple[str, float]]:
        kinds = [("pool", 0.0)] * self.pool_kills + [("main", 0.0)] * self.main_kills
        outages = [("redis", s) for s in self.redis_outages] + [("postgres", self.postgres_outage)]
        # Outages spread among the kills, the first early so work is in flight when Redis loses it.
        step = max(1, len(kinds) // len(outages))
        for i, outage in enumerate(outages):
            kinds.insert(1 + i * (step + 1), outage)
        return kinds


REDUCED = Size(transfers=600, clients=6, pool_kills=2, main_kills=1, redis_outages=(25.0, 2.0), postgres_outage=3.0,
               gap=2.0, rate=40.0)
FULL = Size(transfers=3000, clients=12, pool_kills=6, main_kills=4, redis_outages=(60.0, 5.0), postgres_outage=10.0,
            gap=4.0, rate=40.0)


@dataclass
class Tally:
    """What the clients saw."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> job id
    replay_mismatches: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    slowest: float = 0.0

    def saw(self, status: int | None, error: str | None, seconds: float) -> None:
        with self.lock:
            self.slowest = max(self.slowest, seconds)
            if status is not None:
                self.statuses[status] += 1
            if error:
                self.errors[error] += 1


def _worker_main(launcher_pid: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in children(launcher_pid):
            if "celery" in cmdline(pid) and " worker " in cmdline(pid) and children(pid):
                return pid
        time.sleep(0.2)
    raise TimeoutError("no running worker under the launcher")


class Chaos:
    def __init__(self, size: Size, stack: Stack, pg: servers.Server, redis: servers.Server) -> None:
        self.size, self.stack, self.pg, self.redis = size, stack, pg, redis
        self.done = threading.Event()
        self.log: list[str] = []
        self.last_fault_at = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            launcher = self.stack.procs["launcher"].pid
            for kind, seconds in self.size.faults():
                time.sleep(self.size.gap)
                if kind == "pool":
                    main = _worker_main(launcher)
                    child = random.choice(children(main))
                    os.kill(child, signal.SIGKILL)
                    self.note(f"SIGKILL worker pool process {child}")
                elif kind == "main":
                    main = _worker_main(launcher)
                    os.kill(main, signal.SIGKILL)
                    self.note(f"SIGKILL worker main process {main}")
                else:
                    server = self.redis if kind == "redis" else self.pg
                    server.halt()
                    self.note(f"{kind} down for {seconds:.0f} s")
                    time.sleep(seconds)
                    server.resume()
                    self.note(f"{kind} back")
                self.last_fault_at = time.monotonic()
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.error = exc
        finally:
            self.done.set()

    def note(self, line: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {line}")


def _submit(client: Client, token: str, key: str, body: dict, tally: Tally) -> None:
    """Post one transfer until it is accepted, retrying on the same key through every outage."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            answer = client.call("POST", "/transfers", token, key, json=body)
        except requests.RequestException as exc:
            tally.saw(None, type(exc).__name__, time.monotonic() - started)
            time.sleep(0.3)
            continue
        tally.saw(answer.status_code, None, time.monotonic() - started)
        if answer.status_code == 202:
            job_id = answer.json()["id"]
            with tally.lock:
                first = tally.accepted.setdefault(key, job_id)
            if first != job_id:
                tally.replay_mismatches.append(key)
            return
        if answer.status_code >= 500 and answer.status_code != 503:
            with tally.lock:
                tally.server_errors.append(f"{answer.status_code} {answer.text[:300]}")
        elif answer.status_code not in (409, 503):
            raise AssertionError(f"transfer {key}: {answer.status_code} {answer.text}")
        time.sleep(0.3 if answer.status_code == 503 else 0.05)
    raise AssertionError(f"transfer {key} not accepted within 240 s")


def _database_counts(url: str) -> dict[str, int]:
    with psycopg.connect(libpq(url), connect_timeout=5) as conn:
        row = conn.execute(
            """
            SELECT
              (SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')),
              (SELECT count(*) FROM jobs WHERE kind = 'transfer'),
              (SELECT count(*) FROM (SELECT transfer_id FROM entries GROUP BY transfer_id
                                     HAVING count(*) <> 2) AS odd),
              (SELECT count(*) FROM transfers t JOIN jobs j ON j.id = t.job_id
                 WHERE (j.status = 'succeeded') <> (t.status = 'posted')),
              (SELECT count(*) FROM jobs WHERE kind = 'transfer' AND status = 'succeeded')
            """
        ).fetchone()
    assert row is not None
    keys = ("unfinished", "transfer_jobs", "transfers_not_two_entries", "job_transfer_disagree", "succeeded")
    return dict(zip(keys, row, strict=True))


@pytest.mark.timeout(1800)
def test_bank_invariant_holds_through_worker_kills_and_restarts(own_servers, tmp_path):
    size = FULL if os.environ.get("BANKQ_CHAOS") == "full" else REDUCED
    pg, redis = own_servers
    env = real_env(pg.url, redis.url, tmp_path / "data", BANKQ_REDRIVE_AFTER_SECONDS="10",
                   BANKQ_RESTART_BACKOFF_SECONDS="0.5", WEB_CONCURRENCY="2", WEB_THREADS="8", WORKER_CONCURRENCY="2")
    stack = Stack(env, tmp_path)
    try:
        _run(size, stack, pg, redis)
    finally:
        stack.stop_all()


def _run(size: Size, stack: Stack, pg: servers.Server, redis: servers.Server) -> None:
    client = Client(stack.start_launcher())
    admin = client.login(*ADMIN)
    customers, deposits = [], []
    for i in range(8):
        _, token = client.customer(f"chaos{i}")
        account = client.account(token)
        deposit = client.call("POST", "/deposits", admin, f"fund-{i}",
                              json={"account_id": account, "amount": "5000.00", "currency": "EUR"})
        assert deposit.status_code == 202, deposit.text
        customers.append((token, account))
        deposits.append(deposit.json()["id"])
    assert all(client.wait_job(admin, job_id)["status"] == "succeeded" for job_id in deposits)

    tally = Tally()
    chaos = Chaos(size, stack, pg, redis)
    numbers = itertools.count()
    started = time.monotonic()

    def load(seed: int) -> None:
        rng = random.Random(seed)
        http = Client(client.base.removesuffix("/api/v1"))
        every = size.clients / size.rate
        while True:
            due = time.monotonic() + every
            n = next(numbers)
            if n >= size.transfers and chaos.done.is_set():
                return
            (token, source), (_, destination) = rng.sample(customers, 2)
            body = {"source_account_id": source, "destination_account_id": destination,
                    "amount": f"{rng.randint(100, 9000) / 100:.2f}", "currency": "EUR"}
            _submit(http, token, f"chaos-{n}", body, tally)
            if rng.random() < 0.05:  # a client unsure whether it got through sends the same request again
                _submit(http, token, f"chaos-{n}", body, tally)
            time.sleep(max(0.0, due - time.monotonic()))

    faults = threading.Thread(target=chaos.run, name="chaos")
    clients = [threading.Thread(target=load, args=(i,), name=f"client-{i}") for i in range(size.clients)]
    faults.start()
    for t in clients:
        t.start()
    for t in clients:
        t.join(600)
    faults.join(600)
    load_seconds = time.monotonic() - started
    assert chaos.error is None, f"fault injection failed: {chaos.error!r}\n" + "\n".join(chaos.log)

    # Every accepted job reaches a terminal status within a minute of the last fault.
    deadline = chaos.last_fault_at + 60
    while True:
        counts = _database_counts(pg.url)
        if counts["unfinished"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    settled_after = time.monotonic() - chaos.last_fault_at
    report = (
        f"chaos: {len(tally.accepted)} transfers accepted in {load_seconds:.0f} s; faults: {'; '.join(chaos.log)}; "
        f"answers {dict(tally.statuses)}, client errors {dict(tally.errors)}, slowest answer {tally.slowest:.1f} s; "
        f"all terminal {settled_after:.1f} s after the last fault; {counts}"
    )
    print(report)
    assert counts["unfinished"] == 0, report + "\n" + stack.log("launcher")[-6000:]
    assert not tally.server_errors, tally.server_errors[:5]
    assert not tally.replay_mismatches, tally.replay_mismatches[:5]
    assert len(tally.accepted) >= size.transfers
    # One job per key, each transfer posted at most once (two entries), job and transfer agree.
    assert counts["transfer_jobs"] == len(tally.accepted), report
    assert counts["transfers_not_two_entries"] == 0, report
    assert counts["job_transfer_disagree"] == 0, report
    assert counts["succeeded"] > 0, report

    # Money conserved: the customers hold exactly what was deposited, and the ledger balances.
    balances = [Decimal(client.balance(token, account)) for token, account in customers]
    assert sum(balances) == Decimal("5000.00") * len(customers), balances
    check = client.call("GET", "/admin/ledger/check", admin).json()
    assert check["ok"], check

    # Still serving: the launcher never gave up, nothing but the killed worker needed a restart (beat and the API
    # rode out every outage), and a new transfer goes through.
    launcher_log = stack.log("launcher")
    assert stack.procs["launcher"].poll() is None, launcher_log[-4000:]
    restarts = [line for line in launcher_log.splitlines() if line.startswith("bankq:") and " exited with " in line]
    assert len(restarts) == size.main_kills and all(line.startswith("bankq: worker ") for line in restarts), restarts
    (token, source), (_, destination) = customers[0], customers[1]
    final = client.transfer(token, "after-the-storm", source, destination, "0.01")
    assert final.status_code == 202, final.text
    assert client.wait_job(token, final.json()["id"], timeout=30)["status"] in TERMINAL
