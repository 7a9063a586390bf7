"""Benchmark sizes and knobs, read from BENCH_* environment variables once."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return int(raw) if raw else default


def _pairs(env: dict[str, str], name: str, default: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """`1x1,1x2,2x4`: (API processes, worker processes) pairs."""
    raw = env.get(name)
    if not raw:
        return default
    pairs = []
    for part in raw.replace(" ", "").split(","):
        api, _, workers = part.partition("x")
        if not (api.isdigit() and workers.isdigit()) or min(int(api), int(workers)) < 1:
            raise ValueError(f"{name} must list API x worker process counts such as 1x1,2x4")
        pairs.append((int(api), int(workers)))
    return tuple(pairs)


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return float(raw) if raw else default


SCALING = ((1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (2, 4))


@dataclass(frozen=True)
class BenchConfig:
    database_url: str | None = None  # an existing server to create scratch databases on
    redis_url: str | None = None
    pgbench_scale: int = 8  # one branch per client: no row every client fights over
    pgbench_clients: int = 8
    pgbench_threads: int = 2
    pgbench_seconds: int = 10
    noop_tasks: int = 5000
    noop_concurrency: int = 2
    customers: int = 16  # transferring customers, one token each
    seconds: float = 10.0  # each measuring window
    warmup: float = 3.0
    connections: int = 32  # closed loop (saturation)
    offered_rate: float = 500.0  # open loop: requests/s offered
    web_workers: int = 2
    web_threads: int = 8
    worker_concurrency: int = 2
    batch_items: int = 1000
    batch_connections: int = 4
    scaling: tuple[tuple[int, int], ...] = SCALING
    scaling_seconds: float = 6.0
    ledger_entries: int = 10_000_000  # statement page: entries in the whole ledger ...
    account_entries: int = 1_000_000  # ... of which on the account whose statement is read
    statement_seconds: float = 10.0
    e2e_timeout: float = 180.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BenchConfig:
        env = dict(os.environ if environ is None else environ)
        d = cls()
        return cls(
            database_url=env.get("BENCH_DATABASE_URL") or None,
            redis_url=env.get("BENCH_REDIS_URL") or None,
            pgbench_scale=_int(env, "BENCH_PGBENCH_SCALE", d.pgbench_scale),
            pgbench_clients=_int(env, "BENCH_PGBENCH_CLIENTS", d.pgbench_clients),
            pgbench_threads=_int(env, "BENCH_PGBENCH_THREADS", d.pgbench_threads),
            pgbench_seconds=_int(env, "BENCH_PGBENCH_SECONDS", d.pgbench_seconds),
            noop_tasks=_int(env, "BENCH_NOOP_TASKS", d.noop_tasks),
            noop_concurrency=_int(env, "BENCH_NOOP_CONCURRENCY", d.noop_concurrency),
            customers=_int(env, "BENCH_CUSTOMERS", d.customers),
            seconds=_float(env, "BENCH_SECONDS", d.seconds),
            warmup=_float(env, "BENCH_WARMUP", d.warmup),
            connections=_int(env, "BENCH_CONNECTIONS", d.connections),
            offered_rate=_float(env, "BENCH_OFFERED_RATE", d.offered_rate),
            web_workers=_int(env, "BENCH_WEB_WORKERS", d.web_workers),
            web_threads=_int(env, "BENCH_WEB_THREADS", d.web_threads),
            worker_concurrency=_int(env, "BENCH_WORKER_CONCURRENCY", d.worker_concurrency),
            batch_items=_int(env, "BENCH_BATCH_ITEMS", d.batch_items),
            batch_connections=_int(env, "BENCH_BATCH_CONNECTIONS", d.batch_connections),
            scaling=_pairs(env, "BENCH_SCALING", d.scaling),
            scaling_seconds=_float(env, "BENCH_SCALING_SECONDS", d.scaling_seconds),
            ledger_entries=_int(env, "BENCH_LEDGER_ENTRIES", d.ledger_entries),
            account_entries=_int(env, "BENCH_ACCOUNT_ENTRIES", d.account_entries),
            statement_seconds=_float(env, "BENCH_STATEMENT_SECONDS", d.statement_seconds),
            e2e_timeout=_float(env, "BENCH_E2E_TIMEOUT", d.e2e_timeout),
        )

    def public(self) -> dict[str, Any]:
        """The sizes for the results file, without server addresses (they may carry passwords)."""
        data = asdict(self)
        data["database_url"] = "external" if self.database_url else "throwaway"
        data["redis_url"] = "external" if self.redis_url else "throwaway"
        return data
