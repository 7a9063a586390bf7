"""Single transfers over HTTP: at saturation (closed loop), and at a fixed offered rate (open loop)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bench.bankq_http import Bankq, Window, conserved, drained, drive, transfer_bodies
from bench.config import BenchConfig
from bench.stack import Stack, phase


@dataclass(frozen=True)
class HttpResult:
    saturated: Window
    offered: Window
    failed_jobs: int
    money_conserved: bool
    shape: dict[str, Any]


def run_http(stack: Stack, config: BenchConfig, bankq: Bankq) -> HttpResult:
    bodies = [transfer_bodies(bankq, i) for i in range(len(bankq.customers))]
    with phase(f"  closed loop, {config.connections} connections, {config.seconds:.0f} s"):
        saturated = drive(stack, bankq, bodies=bodies, connections=config.connections, warmup=config.warmup,
                          seconds=config.seconds, run="saturated")
        drained(bankq, config.e2e_timeout)
    with phase(f"  open loop, {config.offered_rate:.0f}/s offered, {config.seconds:.0f} s"):
        offered = drive(stack, bankq, bodies=bodies, mode="open", rate=config.offered_rate,
                        connections=max(64, config.connections), warmup=config.warmup, seconds=config.seconds,
                        run="offered")
        counts = drained(bankq, config.e2e_timeout)
    return HttpResult(saturated, offered, counts.get("failed", 0), conserved(bankq), dataclasses.asdict(bankq.shape))
