"""`python -m bench` (or `make bench`): baselines and bankq measured in one run, printed as ratios."""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import time
from typing import Any

from bench.batch_posting import run_batch
from bench.celery_noop import run_noop
from bench.config import BenchConfig
from bench.http_transfers import run_http
from bench.pgbench import run_pgbench
from bench.report import Figures, per_item, results_document, table, write_results
from bench.stack import PHASES, RESULTS, ROOT, Interrupted, Stack, phase


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
            with phase(f"bankq over HTTP: {config.transfers} transfers from {config.clients} clients"):
                http = run_http(stack, config)
            batches = []
            for processes in config.batch_processes:
                with phase(f"bankq batch posting: {config.batch_transfers} jobs, {processes} process(es)"):
                    batches.append(run_batch(stack, config, processes))
    except KeyboardInterrupt:
        print("bench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except Interrupted:
        print("bench: terminated; everything it started is stopped", file=sys.stderr)
        return 143

    figures = Figures(
        pgbench_tps=pg.tps, celery_noop_per_second=noop.per_second, accept_per_second=http.accept_per_second,
        accept_p50_ms=http.p50_ms, accept_p99_ms=http.p99_ms, e2e_per_second=http.e2e_per_second,
        batch_per_second={b.processes: b.per_second for b in batches},
    )
    details: dict[str, Any] = {
        "pgbench": dataclasses.asdict(pg),
        "celery_noop": dataclasses.asdict(noop),
        "http": dataclasses.asdict(http),
        "batch": [dataclasses.asdict(b) for b in batches],
        "cpu_ms_per_item": {
            "pgbench_transaction": per_item(pg.cpu_seconds, pg.transactions),
            "celery_noop_message": per_item(noop.cpu_seconds, noop.tasks),
            "http_transfer": per_item(http.cpu_seconds, http.accepted),
            **{f"batch_posting_{b.processes}p": per_item(b.cpu_seconds, b.posted) for b in batches},
        },
        "phases": PHASES,
        "run": {"seconds": round(time.monotonic() - began, 1), "cpus": os.cpu_count(),
                "python": platform.python_version(), "commit": _commit(),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    document = results_document(figures, details, config.public())
    write_results(document, RESULTS / "latest.json")

    print(table(figures))
    print()
    print(f"HTTP: {http.accepted}/{http.transfers} accepted by {http.clients} clients in {http.accept_seconds:.1f}s "
          f"({http.retries} retried after a dropped connection), all posted after {http.e2e_seconds:.1f}s; "
          f"failed jobs {http.failed_jobs}; {http.posting_transactions} posting transactions "
          f"({http.accepted / max(1, http.posting_transactions):.1f} transfers each); "
          f"money conserved: {_yes(http.money_conserved)}")
    for b in batches:
        print(f"batch: {b.posted}/{b.transfers} posted in {b.seconds:.1f}s by {b.processes} process(es) in "
              f"{b.transactions} post_transfer_jobs calls (batch size {b.batch_size}); failed {b.failed}; "
              f"set-up accept through core {b.core_accept_per_second:,.0f}/s; "
              f"money conserved: {_yes(b.money_conserved)}")
    print(f"pgbench: {pg.transactions} transactions, scale {pg.scale}, -c {pg.clients} -j {pg.threads}; "
          f"Celery no-op: {noop.tasks} tasks in {noop.seconds:.1f}s (sent in {noop.send_seconds:.1f}s), "
          f"-c {noop.concurrency}")
    print("CPU ms per item (by process group, during the measured window):")
    for name, spent in details["cpu_ms_per_item"].items():
        print(f"  {name:20} " + ", ".join(f"{k} {v:.2f}" for k, v in spent.items()))
    loads = ", ".join(f"{p['load_before']}" for p in PHASES)
    print(f"load average at the start of each phase: {loads} ({os.cpu_count()} CPUs; other work on the box is noise)")
    if http.errors:
        print("HTTP errors (first few): " + "; ".join(http.errors))
    print(f"results: {(RESULTS / 'latest.json').relative_to(ROOT)}; total {details['run']['seconds']}s")
    sound = (http.money_conserved and http.accepted == http.transfers and http.failed_jobs == 0
             and all(b.money_conserved and b.posted == b.transfers for b in batches))
    if not sound:
        print("bench: the run was not sound (lost, failed or unbalanced transfers): see above", file=sys.stderr)
    return 0 if sound else 1


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
