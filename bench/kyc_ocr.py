"""`python -m bench.kyc_ocr`: MRZ readers on realistic photos of rendered documents, and bare tesseract, in one run.

The documents come from `tests.photos.realistic_set` (seeded: the same count gives the same images everywhere):
TD1, TD2, TD3, MRV-A and MRV-B, half in OCR-B and half in other monospaced fonts, one in four with a document number
of zeros and ones (O/0 and I/1 traps), long names cut with fillers, photographed under `tests.photos.CONDITIONS`
(600-1200 px, perspective and rotation, glare, shadows, coloured and textured print, holograms over the MRZ, JPEG
40-70, busy surroundings). For each reader and document it scores:

- read exactly: the reading is valid (every check passes) and its document number, birth and expiry dates are the
  printed ones;
- names exact: the surname and given names are the printed ones (truncated as the MRZ truncates them);
- false valid: the reading is valid and any field differs from the printed one (the failure that matters);
- seconds per document, wall clock and processor time (one OCR thread: on an idle core the two agree; on a
  shared machine the processor time is the honest one; `bare` runs in a child process and shows none).

and prints them per layout, per condition, per level (clean, moderate, heavy), per font and for the trap numbers.
Readers: `bankq` (core.mrz.read_mrz), `tesseract-only` (read_mrz without the second reader), `bare` (the command
`tesseract IMAGE stdout --psm 6` on the whole image, parsed by core.mrz: the baseline the ratio is against),
`rapidocr` (RapidOCR's detection and recognition on the whole image, parsed by core.mrz).

Environment: BENCH_OCR_DOCUMENTS (default 60), BENCH_OCR_READERS (default `bankq,bare`), BENCH_OCR_ONLY (a
substring of the document labels, e.g. `TD2` or `glare`, to read only those), BENCH_OCR_LEVELS (e.g.
`clean,moderate`). Exits 1 on any false valid of bankq.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.mrz import icao, text
from tests.photos import CONDITIONS, LAYOUTS, LEVELS, Sample, realistic_set

Reader = Callable[[Path], "icao.Mrz | None"]


@dataclass(frozen=True)
class Row:
    reader: str
    sample: Sample
    seconds: float
    valid: bool
    exact: bool
    names: bool
    false_valid: bool
    cpu: float = 0.0  # processor seconds of this process: what the reading costs on an idle core


def _bankq(path: Path) -> icao.Mrz | None:
    from core.mrz import read_mrz

    return read_mrz(path).mrz


def _tesseract_only(path: Path) -> icao.Mrz | None:
    from core.mrz import read_mrz

    return read_mrz(path, second_reader=False).mrz


def _bare(path: Path) -> icao.Mrz | None:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    done = subprocess.run(["tesseract", str(path), "stdout", "--psm", "6"], env=env, capture_output=True, text=True)
    return text.read(done.stdout)


def _rapidocr(path: Path) -> icao.Mrz | None:
    from core.mrz import rapid

    return text.read("\n".join(rapid.read_page(Image.open(path))))


READERS: dict[str, Reader] = {"bankq": _bankq, "tesseract-only": _tesseract_only, "bare": _bare, "rapidocr": _rapidocr}


def score(reader: str, sample: Sample, found: icao.Mrz | None, seconds: float, cpu: float = 0.0) -> Row:
    truth = icao.parse(sample.lines)
    valid = found is not None and found.valid
    same = found is not None and found.lines == truth.lines
    exact = (
        valid
        and found is not None
        and (found.document_number, found.birth_date, found.expiry_date)
        == (truth.document_number, truth.birth_date, truth.expiry_date)
    )
    names = found is not None and (found.surname, found.given_names) == (truth.surname, truth.given_names)
    return Row(reader, sample, seconds, valid, exact, names, valid and not same, cpu)


def run(samples: Iterable[Sample], readers: Iterable[str], *, verbose: bool = True) -> list[Row]:
    rows = []
    readers = list(readers)
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as folder:
        for sample in samples:
            path = Path(folder) / "upload.png"
            sample.image().save(path)  # lossless: the shot's own JPEG pass is the one that counts
            outcome = []
            for name in readers:
                started, cpu = time.perf_counter(), time.process_time()
                found = READERS[name](path)
                row = score(name, sample, found, time.perf_counter() - started, time.process_time() - cpu)
                rows.append(row)
                mark = "FALSE VALID" if row.false_valid else "exact" if row.exact else "valid" if row.valid else "-"
                outcome.append(f"{name} {row.seconds:5.2f} s {mark}{'' if row.names else ' (names)'}")
            if verbose:
                print(f"  {sample.name:42s} " + "  |  ".join(outcome), flush=True)
    return rows


def _line(label: str, rows: list[Row]) -> str:
    n = len(rows)
    seconds = [row.seconds for row in rows]
    return (
        f"  {label:22s} {n:4d}  {sum(r.exact for r in rows):4d} ({sum(r.exact for r in rows) / n:4.0%})"
        f"  {sum(r.names for r in rows):4d} ({sum(r.names for r in rows) / n:4.0%})"
        f"  {sum(r.false_valid for r in rows):5d}  {statistics.median(seconds):6.2f}  {sum(seconds) / n:6.2f}"
        f"  {statistics.median(r.cpu for r in rows):6.2f}"
    )


def report(rows: list[Row]) -> str:
    out = []
    header = (
        f"  {'':22s} {'docs':>4s}  {'read exactly':>11s}  {'names exact':>11s}  {'false':>5s}"
        f"  {'median':>6s}  {'mean':>6s}  {'cpu':>6s}"
    )
    for reader in dict.fromkeys(row.reader for row in rows):
        mine = [row for row in rows if row.reader == reader]
        out += [f"{reader}:", header + "  (wall s/doc median and mean, median processor s/doc)", _line("all", mine)]
        groups: list[tuple[str, Callable[[Row], object], Iterable[object]]] = [
            ("level", lambda r: r.sample.level, LEVELS),
            ("layout", lambda r: r.sample.layout, LAYOUTS),
            ("condition", lambda r: r.sample.condition, [c[0] for c in CONDITIONS]),
            ("font", lambda r: r.sample.font, sorted({r.sample.font for r in mine})),
            ("trap number", lambda r: r.sample.trap, (True, False)),
        ]
        for title, key, values in groups:
            for value in values:
                group = [row for row in mine if key(row) == value]
                if group:
                    out.append(_line(f"{title} {value}", group))
        upto = [row for row in mine if row.sample.level in ("clean", "moderate")]
        if upto:
            out.append(_line("clean-to-moderate", upto))
    readers = dict.fromkeys(r.reader for r in rows)
    timed = {reader: sum(r.seconds for r in rows if r.reader == reader) for reader in readers}
    if "bare" in timed and timed["bare"] > 0:
        for reader, seconds in timed.items():
            if reader != "bare":
                out.append(f"ratio {reader} / bare tesseract (time): {seconds / timed['bare']:.2f}x")
    return "\n".join(out)


def main() -> int:
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    count = int(os.environ.get("BENCH_OCR_DOCUMENTS", "60"))
    readers = [name.strip() for name in os.environ.get("BENCH_OCR_READERS", "bankq,bare").split(",") if name.strip()]
    only = os.environ.get("BENCH_OCR_ONLY", "")
    levels = [level for level in os.environ.get("BENCH_OCR_LEVELS", ",".join(LEVELS)).split(",") if level]
    samples = [sample for sample in realistic_set(count) if only in sample.name and sample.level in levels]
    print(f"bench.kyc_ocr: {len(samples)} realistic documents, readers {', '.join(readers)}", flush=True)
    rows = run(samples, readers)
    print(report(rows))
    return 1 if any(row.false_valid and row.reader == "bankq" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
