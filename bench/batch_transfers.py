"""Batch transfers over HTTP: POST /api/v1/transfers/batch with BENCH_BATCH_ITEMS independent items each, from a few
connections back to back; the figure is transfers posted per second while the window is open."""

from __future__ import annotations

from bench.bankq_http import Bankq, Window, batch_bodies, conserved, drained, drive
from bench.config import BenchConfig
from bench.stack import Stack


def run_batches(stack: Stack, config: BenchConfig, bankq: Bankq) -> tuple[Window, bool]:
    bodies = [batch_bodies(bankq, i, config.batch_items) for i in range(len(bankq.customers))]
    window = drive(stack, bankq, bodies=bodies, path="/api/v1/transfers/batch", connections=config.batch_connections,
                   warmup=config.warmup, seconds=config.seconds, run="batch")
    drained(bankq, config.e2e_timeout)
    return window, conserved(bankq)
