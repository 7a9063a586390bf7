"""Baseline A: pgbench's TPC-B against a scratch database on the same PostgreSQL server."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from bench.config import BenchConfig
from bench.stack import Stack

TPS = re.compile(r"^tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)",
                 re.MULTILINE)


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    transactions: int
    clients: int
    threads: int
    seconds: int
    scale: int
    cpu_seconds: dict[str, float]


def pgbench_binary() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), reverse=True)
    if not candidates:
        raise RuntimeError("pgbench not found: install postgresql-contrib/postgresql-client (make system-deps)")
    return candidates[0]


def parse_tps(output: str) -> float:
    match = TPS.search(output)
    if not match:
        raise RuntimeError(f"no tps line in pgbench output:\n{output}")
    return float(match.group(1))


def parse_transactions(output: str) -> int:
    match = re.search(r"number of transactions actually processed: (\d+)", output)
    return int(match.group(1)) if match else 0


def run_pgbench(stack: Stack, config: BenchConfig) -> PgbenchResult:
    url = make_url(stack.scratch_database("bench_pgbench"))
    base = [pgbench_binary(), "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
            "-U", url.username or "postgres"]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    database = url.database or "postgres"
    _run([*base, "-i", "-q", "-s", str(config.pgbench_scale), database], env)
    meter = stack.cpu_meter()
    meter.start()
    client_before = _children_cpu()
    output = _run([*base, "-c", str(config.pgbench_clients), "-j", str(config.pgbench_threads),
                   "-T", str(config.pgbench_seconds), database], env)
    cpu = meter.stop()
    cpu["pgbench"] = round(_children_cpu() - client_before, 3)
    del cpu["bench"], cpu["redis"]
    return PgbenchResult(tps=parse_tps(output), transactions=parse_transactions(output),
                         clients=config.pgbench_clients, threads=config.pgbench_threads,
                         seconds=config.pgbench_seconds, scale=config.pgbench_scale, cpu_seconds=cpu)


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0 and os.geteuid() == 0:
        # Some installations refuse root; the client only needs TCP, so any unprivileged user will do.
        result = subprocess.run(["runuser", "-u", "postgres", "--", *command], env=env, capture_output=True,
                                text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr
