"""Ratios against the baselines, the design targets, the printed table and the results file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# DESIGN.md, Performance: single transfers over HTTP at least as fast as Celery moves no-op messages;
# batch posting at 2.5x pgbench's TPC-B.
HTTP_TARGET = 1.0
BATCH_TARGET = 2.5


@dataclass(frozen=True)
class Figures:
    pgbench_tps: float
    celery_noop_per_second: float
    accept_per_second: float
    accept_p50_ms: float
    accept_p99_ms: float
    e2e_per_second: float
    batch_per_second: dict[int, float] = field(default_factory=dict)  # by number of posting processes


def _ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline > 0 else 0.0


def ratios(f: Figures) -> dict[str, float]:
    found = {
        "accept_vs_celery_noop": _ratio(f.accept_per_second, f.celery_noop_per_second),
        "e2e_vs_celery_noop": _ratio(f.e2e_per_second, f.celery_noop_per_second),
    }
    for processes, rate in sorted(f.batch_per_second.items()):
        found[f"batch_{processes}p_vs_pgbench_tpcb"] = _ratio(rate, f.pgbench_tps)
    if f.batch_per_second:
        found["batch_vs_pgbench_tpcb"] = _ratio(max(f.batch_per_second.values()), f.pgbench_tps)
    return found


def targets(f: Figures) -> dict[str, float]:
    return {name: BATCH_TARGET if name.startswith("batch") else HTTP_TARGET for name in ratios(f)}


def verdicts(f: Figures) -> dict[str, bool]:
    r, t = ratios(f), targets(f)
    return {name: r[name] >= t[name] for name in r}


def table(f: Figures) -> str:
    r, ok = ratios(f), verdicts(f)

    def judged(label: str, measured: str, name: str, baseline: str, target: float) -> tuple[str, ...]:
        return (label, measured, f"{r[name]:.2f}x {baseline}", f">= {target:.2f}x {baseline}",
                "yes" if ok[name] else "NO")

    rows: list[tuple[str, ...]] = [
        ("A: pgbench TPC-B (baseline)", f"{f.pgbench_tps:,.0f} tps", "1.00x A", "", ""),
        ("B: Celery no-op round trip (baseline)", f"{f.celery_noop_per_second:,.0f} msg/s", "1.00x B", "", ""),
        judged("bankq accept rate, HTTP POST /transfers", f"{f.accept_per_second:,.0f} /s",
               "accept_vs_celery_noop", "B", HTTP_TARGET),
        ("bankq accept latency p50 / p99", f"{f.accept_p50_ms:.1f} / {f.accept_p99_ms:.1f} ms", "", "", ""),
        judged("bankq end-to-end posted, HTTP -> ledger", f"{f.e2e_per_second:,.0f} /s",
               "e2e_vs_celery_noop", "B", HTTP_TARGET),
    ]
    for processes, rate in sorted(f.batch_per_second.items()):
        label = f"bankq batch posting, {processes} process{'es' if processes > 1 else ''}"
        rows.append(judged(label, f"{rate:,.0f} /s", f"batch_{processes}p_vs_pgbench_tpcb", "A", BATCH_TARGET))
    header = ("figure", "measured", "ratio", "design target", "met")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)])


def per_item(cpu_seconds: dict[str, float], items: int) -> dict[str, float]:
    """CPU milliseconds per item by process group, and their total."""
    if not items:
        return {}
    spent = {name: round(seconds * 1000 / items, 3) for name, seconds in cpu_seconds.items() if seconds}
    return {**spent, "total": round(sum(spent.values()), 3)}


def results_document(f: Figures, details: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    figures = asdict(f)
    figures["batch_per_second"] = {str(k): v for k, v in f.batch_per_second.items()}
    return {
        "figures": figures,
        "ratios": ratios(f),
        "targets": targets(f),
        "targets_met": verdicts(f),
        "details": details,
        "config": config,
    }


def write_results(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
