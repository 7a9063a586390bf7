"""`make bench` in a tiny configuration (seconds per phase, a small ledger), so the benchmark cannot rot: every phase
runs against real processes, the run is sound (every transfer posted once, money conserved) and the results file
holds every figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.stack import ROOT

pytestmark = pytest.mark.e2e

TINY = {
    "BENCH_PGBENCH_SECONDS": "1", "BENCH_PGBENCH_SCALE": "1", "BENCH_NOOP_TASKS": "200", "BENCH_CUSTOMERS": "4",
    "BENCH_SECONDS": "1.5", "BENCH_WARMUP": "0.5", "BENCH_CONNECTIONS": "8", "BENCH_OFFERED_RATE": "40",
    "BENCH_WEB_WORKERS": "1", "BENCH_WORKER_CONCURRENCY": "1", "BENCH_BATCH_ITEMS": "50",
    "BENCH_BATCH_CONNECTIONS": "2", "BENCH_SCALING": "1x1", "BENCH_SCALING_SECONDS": "1",
    "BENCH_LEDGER_ENTRIES": "4000", "BENCH_ACCOUNT_ENTRIES": "600", "BENCH_STATEMENT_SECONDS": "1",
}


def test_the_benchmark_runs_every_phase_and_writes_its_figures(tmp_path):
    env = {**os.environ, **TINY, "BENCH_RESULTS_DIR": str(tmp_path)}
    for name in ("BENCH_DATABASE_URL", "BENCH_REDIS_URL"):
        env.pop(name, None)
    run = subprocess.run([sys.executable, "-m", "bench"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    document = json.loads((tmp_path / "latest.json").read_text())
    figures = document["figures"]
    for name in ("pgbench_tps", "celery_noop_per_second", "accept_per_second", "e2e_per_second",
                 "offered_accept_per_second", "batch_per_second", "statement_p99_ms"):
        assert figures[name] > 0, name
    assert set(document["targets_met"]) == {"e2e_vs_celery_noop", "batch_vs_pgbench_tpcb", "offered_p99_ms",
                                            "statement_p99_ms"}
    details = document["details"]
    assert details["http"]["money_conserved"] and details["batch"]["money_conserved"]
    assert details["statement"]["account_entries"] >= 600  # and its opening deposit
    assert [(p["api_processes"], p["worker_processes"]) for p in details["scaling"]] == [(1, 1)]
    assert {"api", "worker", "postgres"} <= set(details["cpu_ms_per_item"]["single_transfer"])
    assert "single transfers posted/s, end to end" in run.stdout
