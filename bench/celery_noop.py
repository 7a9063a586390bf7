"""Baseline B: how many no-op messages per second Celery moves through the same Redis with a real worker."""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from bench.config import BenchConfig
from bench.noop_app import QUEUE, TASK, make_app
from bench.stack import Stack


@dataclass(frozen=True)
class NoopResult:
    per_second: float
    tasks: int
    seconds: float
    send_seconds: float
    concurrency: int
    cpu_seconds: dict[str, float]


def run_noop(stack: Stack, config: BenchConfig) -> NoopResult:
    env = {**os.environ, "BENCH_BROKER_URL": stack.redis_url}
    worker = stack.start("noop-worker", [
        sys.executable, "-m", "celery", "-A", "bench.noop_app", "worker", "--loglevel", "WARNING",
        "-Q", QUEUE, "--concurrency", str(config.noop_concurrency),
        "--hostname", f"bench-noop-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle",
    ], env)
    app = make_app(stack.redis_url)
    counter = redis.Redis.from_url(stack.redis_url)
    try:
        _send_and_wait(app, counter, worker, 50, timeout=60)  # worker up, pool forked, connections open
        meter = stack.cpu_meter(worker=worker)
        meter.start()
        started = time.perf_counter()
        sent = _send(app, counter, config.noop_tasks)
        send_seconds = time.perf_counter() - started
        _wait(counter, sent, config.noop_tasks, worker, timeout=120)
        seconds = time.perf_counter() - started
        cpu = meter.stop()
    finally:
        worker.stop()
        app.close()
    return NoopResult(per_second=config.noop_tasks / seconds, tasks=config.noop_tasks, seconds=seconds,
                      send_seconds=send_seconds, concurrency=config.noop_concurrency, cpu_seconds=cpu)


def _send(app, counter: redis.Redis, n: int) -> str:  # type: ignore[no-untyped-def]
    key = f"bench:noop:{uuid.uuid4().hex}"
    counter.delete(key)
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            app.send_task(TASK, args=[key], queue=QUEUE, routing_key=QUEUE, producer=producer)
    return key


def _send_and_wait(app, counter: redis.Redis, worker, n: int, timeout: float) -> None:  # type: ignore[no-untyped-def]
    _wait(counter, _send(app, counter, n), n, worker, timeout)


def _wait(counter: redis.Redis, key: str, n: int, worker, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while _count(counter, key) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_count(counter, key)}/{n} no-op tasks consumed after {timeout}s; worker log:\n"
                               f"{worker.log_tail()}")
        worker.check_alive()
        time.sleep(0.005)
    counter.delete(key)


def _count(counter: redis.Redis, key: str) -> int:
    value: Any = counter.get(key)
    return int(value) if value else 0
