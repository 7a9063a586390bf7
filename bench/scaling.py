"""The scaling curve: single transfers posted per second at saturation for each (API processes, worker processes)
pair, each on a fresh stack, to show which side runs out first."""

from __future__ import annotations

from dataclasses import dataclass

from bench.bankq_http import Shape, drained, drive, start_bankq, transfer_bodies
from bench.config import BenchConfig
from bench.stack import Stack, phase


@dataclass(frozen=True)
class Point:
    api_processes: int
    worker_processes: int
    accepted_per_second: float
    posted_per_second: float
    p99_ms: float
    cpu_seconds: dict[str, float]


def run_scaling(stack: Stack, config: BenchConfig) -> list[Point]:
    points = []
    for api, workers in config.scaling:
        with phase(f"  {api} API process(es), {workers} worker process(es)"):
            bankq = start_bankq(stack, f"scale{api}x{workers}", Shape(api, config.web_threads, workers),
                                config.customers)
            try:
                bodies = [transfer_bodies(bankq, i) for i in range(len(bankq.customers))]
                w = drive(stack, bankq, bodies=bodies, connections=config.connections, warmup=config.warmup,
                          seconds=config.scaling_seconds, run="scaling")
                drained(bankq, config.e2e_timeout)
            finally:
                bankq.stop()
        points.append(Point(api, workers, w.accepted_per_second, w.posted_per_second, w.p99_ms, w.cpu_seconds))
    return points
