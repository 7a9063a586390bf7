"""Batch posting: K transfer jobs accepted through core with no worker running, then posted by
post_transfer_jobs(batch_size=B) in a loop in one or more processes until none is queued."""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.bankq_stack import (
    CURRENCY,
    Customer,
    bankq_env,
    libpq_connect,
    money_conserved,
    new_bank,
    open_customers,
    transfer_job_counts,
)
from bench.config import BenchConfig
from bench.stack import Stack
from core.bank import Bank
from core.settings import Settings
from core.transfers import TransferRequest, post_transfer_jobs, request_transfer

ACCEPT_THREADS = 4


@dataclass(frozen=True)
class BatchResult:
    transfers: int
    posted: int
    failed: int
    processes: int
    batch_size: int
    per_second: float
    seconds: float
    transactions: int
    core_accept_per_second: float
    money_conserved: bool
    cpu_seconds: dict[str, float]


def run_batch(stack: Stack, config: BenchConfig, processes: int) -> BatchResult:
    """One round on a fresh database: accept, then post with `processes` processes."""
    database_url = stack.scratch_database("bankq_bench_batch")
    env = bankq_env(stack, database_url, "batch")
    bank = new_bank(stack, env, pool_size=ACCEPT_THREADS + 2)
    customers = open_customers(bank, max(2, config.batch_accounts))
    started = time.perf_counter()
    job_ids = _accept(bank, customers, config.batch_transfers)
    accept_rate = len(job_ids) / (time.perf_counter() - started)
    bank.db.dispose()

    seconds, transactions, cpu = _post_in_processes(stack, env, job_ids, config.batch_size, processes)
    with libpq_connect(database_url) as conn:
        counts = transfer_job_counts(conn)
        conserved = money_conserved(conn, len(customers))
    if counts.get("queued", 0):
        raise RuntimeError(f"batch posting stopped with jobs still queued: {counts}")
    posted = counts.get("succeeded", 0)
    return BatchResult(transfers=len(job_ids), posted=posted, failed=counts.get("failed", 0),
                       processes=processes, batch_size=config.batch_size, per_second=posted / seconds,
                       seconds=seconds, transactions=transactions, core_accept_per_second=accept_rate,
                       money_conserved=conserved, cpu_seconds=cpu)


def _accept(bank: Bank, customers: list[Customer], n: int) -> list[str]:
    job_ids: list[str] = []
    errors: list[BaseException] = []

    def accept_share(share: int) -> None:
        try:
            for i in range(share, n, ACCEPT_THREADS):
                source, destination = customers[i % len(customers)], customers[(i * 7 + 1) % len(customers)]
                if destination is source:
                    destination = customers[(i + 1) % len(customers)]
                body = {"source_account_id": source.account_id, "destination_account_id": destination.account_id,
                        "amount": "1.00", "currency": CURRENCY}
                command = TransferRequest(source_account_id=source.account_id, amount="1.00", currency=CURRENCY,
                                          destination_account_id=destination.account_id)
                accepted = request_transfer(bank, source.user, command,
                                            idempotency_key=f"batch-{i}", body=body)
                job_ids.append(accepted.body["id"])
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=accept_share, args=(s,), daemon=True) for s in range(ACCEPT_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return job_ids


def _post_in_processes(stack: Stack, env: dict[str, str], job_ids: list[str], batch_size: int,
                       count: int) -> tuple[float, int, dict[str, float]]:
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    results: Any = ctx.Queue()
    share = len(job_ids) // count
    processes = [
        ctx.Process(target=post_until_empty, daemon=True,
                    args=(env, job_ids[p * share:] + job_ids[:p * share], batch_size, go, results))
        for p in range(count)
    ]
    for p in processes:
        p.start()
        stack.callback(_terminate, p)
    ready = _collect(results, processes, timeout=60)
    if any(r != "ready" for r in ready):
        raise RuntimeError(f"a posting process did not start: {ready}")
    meter = stack.cpu_meter()
    meter.start()
    started = time.monotonic()
    go.set()
    reports = _collect(results, processes, timeout=300)
    cpu = meter.stop()
    del cpu["bench"], cpu["redis"]
    cpu["posting"] = round(sum(r["cpu"] for r in reports), 3)
    for p in processes:
        p.join(10)
    errors = [r["error"] for r in reports if r.get("error")]
    if errors:
        raise RuntimeError(f"batch posting failed: {errors[0]}")
    return max(r["finished"] for r in reports) - started, sum(r["transactions"] for r in reports), cpu


def _collect(results: Any, processes: Sequence[multiprocessing.process.BaseProcess], timeout: float) -> list[Any]:
    """One message from each process, failing fast if one of them died without a word."""
    answers: list[Any] = []
    deadline = time.monotonic() + timeout
    silent_since: float | None = None
    while len(answers) < len(processes):
        try:
            answers.append(results.get(timeout=0.5))
            continue
        except queue.Empty:
            pass
        exited = sum(p.exitcode is not None for p in processes)
        now = time.monotonic()
        silent_since = (silent_since or now) if exited > len(answers) else None
        if now > deadline or (silent_since is not None and now - silent_since > 3):
            raise RuntimeError(f"posting processes stopped answering: exit codes {[p.exitcode for p in processes]}")
    return answers


def post_until_empty(env: dict[str, str], job_ids: list[str], batch_size: int, go: Any, results: Any) -> None:
    """One posting process: call post_transfer_jobs with a job it believes queued until nothing is left."""
    try:
        bank = Bank(Settings.from_env(env), pool_size=2)
        bank.db.ping()
        results.put("ready")
        go.wait()
        cpu_before = os.times()
        done: set[str] = set()
        transactions = 0
        position = 0
        while True:
            while position < len(job_ids) and job_ids[position] in done:
                position += 1
            own = job_ids[position % len(job_ids)]
            report = post_transfer_jobs(bank.db, own, batch_size=batch_size)
            transactions += 1
            # Its own job is now posted, failed, or held by another process that will post it.
            done.update(report.posted, report.failed, [own])
            if not report.posted and not report.failed and _nothing_queued(bank):
                break
        finished, cpu_after = time.monotonic(), os.times()
        cpu = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
        bank.db.dispose()
        results.put({"finished": finished, "transactions": transactions, "cpu": cpu})
    except BaseException as exc:  # the parent reports it
        results.put({"error": f"{type(exc).__name__}: {exc}", "finished": time.monotonic(), "transactions": 0,
                     "cpu": 0.0})


def _nothing_queued(bank: Bank) -> bool:
    from sqlalchemy import select

    from core.models import Job

    with bank.db.transaction() as s:
        return s.scalar(select(Job.id).where(Job.kind == "transfer", Job.status == "queued").limit(1)) is None


def _terminate(process: multiprocessing.process.BaseProcess) -> None:
    if process.is_alive():
        process.terminate()
        process.join(5)
