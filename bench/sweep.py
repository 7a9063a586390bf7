"""`python -m bench.sweep`: gunicorn processes x threads per process for the API, measured in one run: for each
shape, single transfers accepted per second at saturation and the accept p99 at the offered rate. The shape `make
run` starts with (WEB_CONCURRENCY, WEB_THREADS) comes from this table.

BENCH_SWEEP_PROCESSES (1,2,3) and BENCH_SWEEP_THREADS (2,4,8,16) choose the shapes; BENCH_SECONDS,
BENCH_OFFERED_RATE and BENCH_CONNECTIONS as for `make bench`. Two worker processes post behind every shape."""

from __future__ import annotations

import json
import os
import sys

from bench.bankq_http import Shape, drained, drive, start_bankq, transfer_bodies
from bench.config import BenchConfig
from bench.stack import RESULTS, Stack, phase


def _ints(name: str, default: str) -> list[int]:
    return [int(v) for v in (os.environ.get(name) or default).replace(" ", "").split(",") if v]


def main() -> int:
    config = BenchConfig.from_env()
    rows = []
    with Stack() as stack:
        with phase("starting PostgreSQL and Redis"):
            stack.start_servers(config.database_url, config.redis_url)
        for processes in _ints("BENCH_SWEEP_PROCESSES", "1,2,3"):
            for threads in _ints("BENCH_SWEEP_THREADS", "2,4,8,16"):
                with phase(f"{processes} API process(es) x {threads} thread(s)"):
                    bankq = start_bankq(stack, f"sweep{processes}x{threads}", Shape(processes, threads, 2),
                                        config.customers)
                    try:
                        bodies = [transfer_bodies(bankq, i) for i in range(len(bankq.customers))]
                        saturated = drive(stack, bankq, bodies=bodies, connections=config.connections,
                                          warmup=config.warmup, seconds=config.seconds, run="sweep")
                        drained(bankq, config.e2e_timeout)
                        offered = drive(stack, bankq, bodies=bodies, mode="open", rate=config.offered_rate,
                                        connections=max(64, config.connections), warmup=config.warmup,
                                        seconds=config.seconds, run="sweep-offered")
                        drained(bankq, config.e2e_timeout)
                    finally:
                        bankq.stop()
                rows.append({"processes": processes, "threads": threads,
                             "accepted_per_second": saturated.accepted_per_second,
                             "saturated_p99_ms": saturated.p99_ms, "posted_per_second": saturated.posted_per_second,
                             "offered_accepted_per_second": offered.accepted_per_second,
                             "offered_p99_ms": offered.p99_ms})
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sweep.json").write_text(json.dumps({"offered_rate": config.offered_rate, "rows": rows}, indent=2)
                                        + "\n")
    print(f"{'processes':>9}  {'threads':>7}  {'accepted/s':>10}  {'p99 ms':>7}  {'posted/s':>8}  "
          f"{'at ' + format(config.offered_rate, '.0f') + '/s: accepted/s':>22}  {'p99 ms':>7}")
    for r in rows:
        print(f"{r['processes']:>9}  {r['threads']:>7}  {r['accepted_per_second']:>10,.0f}  "
              f"{r['saturated_p99_ms']:>7.1f}  {r['posted_per_second']:>8,.0f}  "
              f"{r['offered_accepted_per_second']:>22,.0f}  {r['offered_p99_ms']:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
