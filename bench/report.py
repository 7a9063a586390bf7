"""Ratios against the baselines, the targets, the printed table and the results file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The targets `make bench` holds bankq to (the throughput issue; DESIGN.md, Performance).
E2E_TARGET = 1.0  # single transfers posted end to end per second, x the Celery no-op drain
BATCH_TARGET = 2.5  # batch transfers posted per second, x pgbench TPC-B
OFFERED_P99_TARGET_MS = 25.0  # accept latency p99 at the offered rate
STATEMENT_P99_TARGET_MS = 50.0  # a 50-row statement page on a 1M-entry account in a 10M-entry ledger


@dataclass(frozen=True)
class Figures:
    pgbench_tps: float
    celery_noop_per_second: float
    accept_per_second: float  # at saturation
    accept_p50_ms: float
    accept_p99_ms: float
    e2e_per_second: float  # single transfers posted per second at saturation
    offered_rate: float
    offered_accept_per_second: float
    offered_p50_ms: float
    offered_p99_ms: float
    batch_per_second: float  # batch items posted per second
    statement_p50_ms: float
    statement_p99_ms: float


def _ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline > 0 else 0.0


def ratios(f: Figures) -> dict[str, float]:
    return {
        "accept_vs_celery_noop": _ratio(f.accept_per_second, f.celery_noop_per_second),
        "e2e_vs_celery_noop": _ratio(f.e2e_per_second, f.celery_noop_per_second),
        "batch_vs_pgbench_tpcb": _ratio(f.batch_per_second, f.pgbench_tps),
    }


def verdicts(f: Figures) -> dict[str, bool]:
    r = ratios(f)
    return {
        "e2e_vs_celery_noop": r["e2e_vs_celery_noop"] >= E2E_TARGET,
        "batch_vs_pgbench_tpcb": r["batch_vs_pgbench_tpcb"] >= BATCH_TARGET,
        "offered_p99_ms": 0 < f.offered_p99_ms <= OFFERED_P99_TARGET_MS
        and f.offered_accept_per_second >= 0.95 * f.offered_rate,
        "statement_p99_ms": 0 < f.statement_p99_ms <= STATEMENT_P99_TARGET_MS,
    }


def targets() -> dict[str, str]:
    return {
        "e2e_vs_celery_noop": f">= {E2E_TARGET:.2f}x B",
        "batch_vs_pgbench_tpcb": f">= {BATCH_TARGET:.2f}x A",
        "offered_p99_ms": f"p99 <= {OFFERED_P99_TARGET_MS:.0f} ms, all offered accepted",
        "statement_p99_ms": f"p99 <= {STATEMENT_P99_TARGET_MS:.0f} ms",
    }


def table(f: Figures) -> str:
    r, ok, t = ratios(f), verdicts(f), targets()

    def met(name: str) -> str:
        return "yes" if ok[name] else "NO"

    rows: list[tuple[str, ...]] = [
        ("A: pgbench TPC-B (baseline)", f"{f.pgbench_tps:,.0f} tps", "1.00x A", "", ""),
        ("B: Celery no-op drain (baseline)", f"{f.celery_noop_per_second:,.0f} msg/s", "1.00x B", "", ""),
        ("single transfers accepted/s, saturated", f"{f.accept_per_second:,.0f} /s",
         f"{r['accept_vs_celery_noop']:.2f}x B", "", ""),
        ("  accept latency p50 / p99, saturated", f"{f.accept_p50_ms:.1f} / {f.accept_p99_ms:.1f} ms", "", "", ""),
        ("single transfers posted/s, end to end", f"{f.e2e_per_second:,.0f} /s",
         f"{r['e2e_vs_celery_noop']:.2f}x B", t["e2e_vs_celery_noop"], met("e2e_vs_celery_noop")),
        (f"accept at {f.offered_rate:,.0f}/s offered: accepted/s", f"{f.offered_accept_per_second:,.0f} /s", "", "",
         ""),
        ("  accept latency p50 / p99, offered", f"{f.offered_p50_ms:.1f} / {f.offered_p99_ms:.1f} ms", "",
         t["offered_p99_ms"], met("offered_p99_ms")),
        ("batch transfers posted/s", f"{f.batch_per_second:,.0f} /s", f"{r['batch_vs_pgbench_tpcb']:.2f}x A",
         t["batch_vs_pgbench_tpcb"], met("batch_vs_pgbench_tpcb")),
        ("statement page p50 / p99", f"{f.statement_p50_ms:.1f} / {f.statement_p99_ms:.1f} ms", "",
         t["statement_p99_ms"], met("statement_p99_ms")),
    ]
    header = ("figure", "measured", "ratio", "target", "met")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)])


def per_item(cpu_seconds: dict[str, float], items: int, *, accepted: int | None = None) -> dict[str, float]:
    """CPU milliseconds per item by process group, and their total. With `accepted` (items is then what was
    posted): the API's CPU per accepted item, the worker's and beat's per posted item, the servers' per the mean of
    the two, so a window in which the worker fell behind the API charges neither side the other's backlog."""
    if not items:
        return {}
    if accepted:
        mean = (accepted + items) / 2
        per = {"api": accepted, "worker": items, "beat": items}
        spent = {name: round(seconds * 1000 / per.get(name, mean), 3) for name, seconds in cpu_seconds.items()
                 if seconds}
    else:
        spent = {name: round(seconds * 1000 / items, 3) for name, seconds in cpu_seconds.items() if seconds}
    return {**spent, "total": round(sum(spent.values()), 3)}


def results_document(f: Figures, details: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    return {
        "figures": asdict(f),
        "ratios": ratios(f),
        "targets": targets(),
        "targets_met": verdicts(f),
        "details": details,
        "config": config,
    }


def write_results(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
