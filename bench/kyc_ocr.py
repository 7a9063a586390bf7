"""`python -m bench.kyc_ocr`: the MRZ reader against bare tesseract, on the same rendered documents, in one run.

For each of N documents (clean and degraded passports and ID cards from tests.documents) it times
`core.kyc.ocr.read_document` and the bare command `tesseract IMAGE stdout --psm 6` on the same image file, and prints
the ratio of the two, and the share of renders whose MRZ was read fully valid with exactly the printed fields.
Bare tesseract runs with the same OMP_THREAD_LIMIT=1 the reader uses (without it tesseract is several times slower
on a 2-core machine, which would flatter the ratio).

Environment: BENCH_OCR_DOCUMENTS (default 24).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.kyc import mrz, ocr
from tests.documents import PEOPLE, render_td1, render_td3, td1_lines, td3_lines

DEGRADATIONS: list[tuple[str, dict[str, float]]] = [
    ("clean", {}),
    ("jpeg q40", {"jpeg": 40}),
    ("blur 1.0", {"blur": 1.0}),
    ("noise 12", {"noise": 12}),
    ("uneven light", {"lighting": 0.6}),
    ("rotated 1-3", {"rotate": 2.5}),
    ("scale 0.6", {"scale": 0.6}),
    ("scale 1.5", {"scale": 1.5}),
    ("on a table", {"background": 0.6, "rotate": -1.5}),
    ("phone photo", {"background": 0.5, "rotate": 2.0, "lighting": 0.4, "blur": 0.8, "noise": 6, "jpeg": 60}),
]


@dataclasses.dataclass
class Row:
    degradation: str
    kind: str
    ours: float
    bare: float
    attempts: int
    verified: bool
    wrong: bool  # verified with fields other than the printed ones


def _bare(path: Path) -> float:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    started = time.perf_counter()
    subprocess.run(["tesseract", str(path), "stdout", "--psm", "6"], env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def run(count: int) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as folder:
        for i in range(count):
            name, degradations = DEGRADATIONS[i % len(DEGRADATIONS)]
            person = PEOPLE[i % len(PEOPLE)]
            kind = "TD1" if (i // len(DEGRADATIONS)) % 2 else "TD3"
            if kind == "TD1":
                person = dataclasses.replace(person, document_code="I")
                image, lines = render_td1(person, seed=100 + i, **degradations), td1_lines(person)
            else:
                image, lines = render_td3(person, seed=100 + i, **degradations), td3_lines(person)
            path = Path(folder) / f"doc{i}.png"
            image.save(path)
            started = time.perf_counter()
            reading = ocr.read_document(path)
            ours = time.perf_counter() - started
            bare = _bare(path)
            expected = mrz.parse(lines)
            verified = reading.mrz is not None and reading.mrz.valid
            exact = (
                verified
                and reading.mrz is not None
                and all(
                    getattr(reading.mrz, f.name) == getattr(expected, f.name)
                    for f in dataclasses.fields(expected)
                    if f.name != "checks"
                )
            )
            rows.append(Row(name, kind, ours, bare, reading.attempts, verified, verified and not exact))
            outcome = ("valid" if verified else "-") + ("  WRONG FIELDS" if rows[-1].wrong else "")
            print(
                f"  {i + 1:3d}/{count} {kind} {name:13s} read_document {ours:6.2f} s ({reading.attempts:2d} runs)"
                f"  bare tesseract {bare:5.2f} s  {outcome}",
                flush=True,
            )
    return rows


def report(rows: list[Row]) -> str:
    ours = sum(row.ours for row in rows)
    bare = sum(row.bare for row in rows)
    degraded = [row for row in rows if row.degradation != "clean"]
    clean = [row for row in rows if row.degradation == "clean"]
    lines = [
        f"documents: {len(rows)}  read_document: {ours / len(rows):.2f} s per document "
        f"(median {statistics.median(r.ours for r in rows):.2f}, max {max(r.ours for r in rows):.2f}, "
        f"{sum(r.attempts for r in rows) / len(rows):.1f} tesseract runs)",
        f"bare `tesseract IMAGE stdout --psm 6`: {bare / len(rows):.2f} s per document",
        f"ratio read_document / bare tesseract: {ours / bare:.2f}x",
        f"clean renders read fully valid: {sum(r.verified for r in clean)}/{len(clean)}",
        f"degraded renders read fully valid: {sum(r.verified for r in degraded)}/{len(degraded)}"
        f" ({sum(r.verified for r in degraded) / max(1, len(degraded)):.0%})",
        f"false verifications (valid with wrong fields): {sum(r.wrong for r in rows)}",
        "per degradation (valid/renders, mean seconds):",
    ]
    for name, _ in DEGRADATIONS:
        group = [row for row in rows if row.degradation == name]
        if group:
            mean = sum(r.ours for r in group) / len(group)
            lines.append(f"  {name:13s} {sum(r.verified for r in group)}/{len(group)}  {mean:.2f} s")
    return "\n".join(lines)


def main() -> int:
    count = int(os.environ.get("BENCH_OCR_DOCUMENTS", "24"))
    print(f"bench.kyc_ocr: {count} rendered documents, read_document vs bare tesseract", flush=True)
    rows = run(count)
    print(report(rows))
    return 1 if any(row.wrong for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
