"""Benchmark sizes and knobs, read from BENCH_* environment variables once."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return int(raw) if raw else default


def _ints(env: dict[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name)
    values = tuple(int(v) for v in raw.replace(" ", "").split(",") if v) if raw else default
    if not values or min(values) < 1:
        raise ValueError(f"{name} must list process counts such as 1,2")
    return values


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return float(raw) if raw else default


@dataclass(frozen=True)
class BenchConfig:
    database_url: str | None = None  # an existing server to create scratch databases on
    redis_url: str | None = None
    pgbench_scale: int = 1
    pgbench_clients: int = 4
    pgbench_threads: int = 2
    pgbench_seconds: int = 10
    noop_tasks: int = 3000
    noop_concurrency: int = 2
    transfers: int = 1000  # HTTP transfers
    clients: int = 8  # HTTP client threads, one customer each
    web_workers: int = 2
    web_threads: int = 4
    worker_concurrency: int = 2
    batch_transfers: int = 2500  # per round
    batch_size: int = 100
    batch_processes: tuple[int, ...] = (1, 2)  # one round, on its own database, per entry
    batch_accounts: int = 200
    e2e_timeout: float = 120.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BenchConfig:
        env = dict(os.environ if environ is None else environ)
        return cls(
            database_url=env.get("BENCH_DATABASE_URL") or None,
            redis_url=env.get("BENCH_REDIS_URL") or None,
            pgbench_scale=_int(env, "BENCH_PGBENCH_SCALE", 1),
            pgbench_clients=_int(env, "BENCH_PGBENCH_CLIENTS", 4),
            pgbench_threads=_int(env, "BENCH_PGBENCH_THREADS", 2),
            pgbench_seconds=_int(env, "BENCH_PGBENCH_SECONDS", 10),
            noop_tasks=_int(env, "BENCH_NOOP_TASKS", 3000),
            noop_concurrency=_int(env, "BENCH_NOOP_CONCURRENCY", 2),
            transfers=_int(env, "BENCH_TRANSFERS", 1000),
            clients=_int(env, "BENCH_CLIENTS", 8),
            web_workers=_int(env, "BENCH_WEB_WORKERS", 2),
            web_threads=_int(env, "BENCH_WEB_THREADS", 4),
            worker_concurrency=_int(env, "BENCH_WORKER_CONCURRENCY", 2),
            batch_transfers=_int(env, "BENCH_BATCH_TRANSFERS", 2500),
            batch_size=_int(env, "BENCH_BATCH_SIZE", 100),
            batch_processes=_ints(env, "BENCH_BATCH_PROCESSES", (1, 2)),
            batch_accounts=_int(env, "BENCH_BATCH_ACCOUNTS", 200),
            e2e_timeout=_float(env, "BENCH_E2E_TIMEOUT", 120.0),
        )

    def public(self) -> dict[str, Any]:
        """The sizes for the results file, without server addresses (they may carry passwords)."""
        data = asdict(self)
        data["database_url"] = "external" if self.database_url else "throwaway"
        data["redis_url"] = "external" if self.redis_url else "throwaway"
        return data
