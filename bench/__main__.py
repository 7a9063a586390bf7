"""`python -m bench` (or `make bench`): baselines and bankq measured in one run, printed as ratios.

A: pgbench TPC-B. B: a Celery no-op drain through the same Redis. Then bankq as `make run` starts it on PostgreSQL +
Redis: single transfers over HTTP at saturation and at a fixed offered rate, batch transfers, the CPU each process
spent per transfer, the scaling curve over API and worker processes, and a statement page on a big ledger."""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import time
from typing import Any

from bench.bankq_http import Shape, start_bankq
from bench.batch_transfers import run_batches
from bench.celery_noop import run_noop
from bench.config import BenchConfig
from bench.http_transfers import run_http
from bench.pgbench import run_pgbench
from bench.report import Figures, per_item, results_document, table, write_results
from bench.scaling import run_scaling
from bench.stack import PHASES, RESULTS, ROOT, Interrupted, Stack, phase
from bench.statement_page import run_statement_page


def main() -> int:
    config = BenchConfig.from_env()
    began = time.monotonic()
    try:
        with Stack() as stack:
            with phase("starting PostgreSQL and Redis"):
                stack.start_servers(config.database_url, config.redis_url)
            with phase(f"baseline A: pgbench TPC-B, -c {config.pgbench_clients} -T {config.pgbench_seconds}"):
                pg = run_pgbench(stack, config)
            with phase(f"baseline B: {config.noop_tasks} Celery no-op tasks"):
                noop = run_noop(stack, config)
            shape = Shape(config.web_workers, config.web_threads, config.worker_concurrency)
            with phase(f"starting bankq: {shape.api_processes} API process(es) x {shape.web_threads} threads, "
                       f"{shape.worker_processes} worker process(es), beat"):
                bankq = start_bankq(stack, "bankq", shape, max(config.customers, config.batch_connections, 2))
            try:
                with phase(f"bankq single transfers over HTTP, {config.customers} customers"):
                    http = run_http(stack, config, bankq)
                with phase(f"bankq batch transfers over HTTP, {config.batch_items} items a batch"):
                    batch, batch_conserved = run_batches(stack, config, bankq)
                with phase("bankq statement page"):
                    statement = run_statement_page(stack, config, bankq)
            finally:
                bankq.stop()
            with phase("bankq scaling curve"):
                curve = run_scaling(stack, config)
    except KeyboardInterrupt:
        print("bench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except Interrupted:
        print("bench: terminated; everything it started is stopped", file=sys.stderr)
        return 143

    s, o = http.saturated, http.offered
    figures = Figures(
        pgbench_tps=pg.tps, celery_noop_per_second=noop.per_second, accept_per_second=s.accepted_per_second,
        accept_p50_ms=s.p50_ms, accept_p99_ms=s.p99_ms, e2e_per_second=s.posted_per_second,
        offered_rate=config.offered_rate, offered_accept_per_second=o.accepted_per_second, offered_p50_ms=o.p50_ms,
        offered_p99_ms=o.p99_ms, batch_per_second=batch.posted_per_second,
        statement_p50_ms=statement.window.p50_ms, statement_p99_ms=statement.window.p99_ms,
    )
    cpu = {
        "pgbench_transaction": per_item(pg.cpu_seconds, pg.transactions),
        "celery_noop_message": per_item(noop.cpu_seconds, noop.tasks),
        "single_transfer": per_item(s.cpu_seconds, s.posted, accepted=s.accepted),
        "batch_transfer": per_item(batch.cpu_seconds, batch.posted, accepted=batch.accepted * config.batch_items),
    }
    details: dict[str, Any] = {
        "pgbench": dataclasses.asdict(pg),
        "celery_noop": dataclasses.asdict(noop),
        "http": {"saturated": _window(s), "offered": _window(o), "failed_jobs": http.failed_jobs,
                 "money_conserved": http.money_conserved, "shape": http.shape},
        "batch": {**_window(batch), "money_conserved": batch_conserved},
        "scaling": [dataclasses.asdict(p) for p in curve],
        "statement": {"ledger_entries": statement.ledger_entries, "account_entries": statement.account_entries,
                      "seed_seconds": statement.seed_seconds, **_window(statement.window)},
        "cpu_ms_per_item": cpu,
        "phases": PHASES,
        "run": {"seconds": round(time.monotonic() - began, 1), "cpus": os.cpu_count(),
                "python": platform.python_version(), "machine": platform.machine(), "commit": _commit(),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    document = results_document(figures, details, config.public())
    write_results(document, RESULTS / "latest.json")

    print(table(figures))
    print()
    print(f"single transfers: {s.accepted} accepted and {s.posted} posted in the {s.seconds:.0f} s window from "
          f"{s.connections} connections ({s.retries} resent after a dropped connection); afterwards every job "
          f"finished, failed jobs {http.failed_jobs}, money conserved: {_yes(http.money_conserved)}")
    print(f"batch transfers: {batch.accepted} batches of {config.batch_items} accepted, {batch.posted} transfers "
          f"posted in the window; money conserved: {_yes(batch_conserved)}")
    print(f"statement page: {statement.window.sent} pages read from an account with {statement.account_entries:,} "
          f"entries in a ledger of {statement.ledger_entries:,} (seeded in {statement.seed_seconds:.0f} s)")
    print("CPU ms per item, by process (during the window):")
    for name, spent in cpu.items():
        print(f"  {name:20} " + ", ".join(f"{k} {v:.2f}" for k, v in spent.items()))
    print("scaling curve (single transfers at saturation):")
    print(f"  {'API processes':>13}  {'worker processes':>16}  {'accepted/s':>10}  {'posted/s':>9}  {'p99 ms':>7}")
    for p in curve:
        print(f"  {p.api_processes:>13}  {p.worker_processes:>16}  {p.accepted_per_second:>10,.0f}  "
              f"{p.posted_per_second:>9,.0f}  {p.p99_ms:>7.1f}")
    loads = ", ".join(f"{p['load_before']}" for p in PHASES)
    print(f"load average at the start of each phase: {loads} ({os.cpu_count()} CPUs; other work on the box is noise)")
    for name, w in (("single", s), ("offered", o), ("batch", batch)):
        if w.errors:
            print(f"{name} errors (first few): " + "; ".join(w.errors))
    print(f"results: {RESULTS / 'latest.json'}; total {details['run']['seconds']}s")
    sound = (http.money_conserved and http.failed_jobs == 0 and batch_conserved and s.accepted > 0
             and not s.errors and not batch.errors)
    if not sound:
        print("bench: the run was not sound (refused, failed or unbalanced transfers): see above", file=sys.stderr)
    return 0 if sound else 1


def _window(w: Any) -> dict[str, Any]:
    return dataclasses.asdict(w)


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
