"""Large statements stream: the CSV and PDF writers take the ledger's lines a batch at a time and keep none of them
once written (so 1,000,000 lines never sit in memory together), the CSV in constant memory, the PDF holding only
its finished pages, deflated."""

from __future__ import annotations

import io
import re
import tracemalloc
import weakref
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import pypdfium2 as pdfium
import pytest

from core.reports.pdf import _DeflatingCanvas
from core.reports.render import Heading, Period, Totals, write_csv, write_pdf


class Line(NamedTuple):
    id: int
    posted_at: datetime
    description: str
    amount: int
    balance_after: int
    transfer_id: str


class Batch(list):  # type: ignore[type-arg]
    """A list that a weak reference can watch."""


class Ledger:
    """`n` lines in batches of `size`, made as they are asked for; remembers which batches are still alive."""

    def __init__(self, n: int, size: int) -> None:
        self.n, self.size = n, size
        self.alive_at_most = 0
        self._refs: list[weakref.ref[Batch]] = []

    def batches(self) -> Iterator[Batch]:
        at = datetime(2026, 10, 1, tzinfo=UTC)
        for start in range(0, self.n, self.size):
            self.alive_at_most = max(self.alive_at_most, sum(r() is not None for r in self._refs))
            end = min(self.n, start + self.size)
            batch = Batch(Line(i, at, f"line {i}", 100, 100 * (i + 1), "t") for i in range(start, end))
            self._refs.append(weakref.ref(batch))
            yield batch


def heading(n: int) -> Heading:
    return Heading("12345678903", "Ada", "EUR", Period(date(2026, 10, 1), date(2026, 10, 31)),
                   Totals(n, 0, 100 * n, 0, n))


class Sink(io.RawIOBase):
    """A file that counts what is written to it and keeps nothing."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.size += len(data)
        return len(data)


@pytest.mark.parametrize("writer", [write_csv, write_pdf])
def test_a_writer_holds_no_batch_it_has_written(writer) -> None:
    ledger = Ledger(3_000, 100)
    assert writer(Sink(), heading(3_000), ledger.batches()) == 3_000
    # While batch k+1 is being made, batch k may still be the writer's loop variable; no older one is alive.
    assert ledger.alive_at_most == 1


def _csv_peak(n: int) -> int:
    """The lowest of three peaks: tracemalloc also counts what other threads of the test process allocate meanwhile
    (a server or stream thread left from an earlier test), which can only add to a peak, never take from it."""
    peaks = []
    for _ in range(3):
        tracemalloc.start()
        try:
            write_csv(Sink(), heading(n), Ledger(n, 500).batches())
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    return min(peaks)


def test_the_csv_is_written_in_constant_memory() -> None:
    small, large = _csv_peak(2_000), _csv_peak(20_000)  # ten times the lines, ~1 MB more output
    assert large - small < 100_000, (small, large)


def test_finished_pdf_pages_are_kept_deflated_and_the_file_opens() -> None:
    out = io.BytesIO()
    pdf = _DeflatingCanvas(out, invariant=True, pageCompression=0)
    for page in range(3):
        for row in range(45):
            pdf.drawString(50, 800 - 16 * row, f"page {page} line {row} " + "x" * 40)
        pdf.showPage()
        kept = pdf._doc.Pages.pages[-1]
        assert kept.stream is None and b"page %d line 44" % page in zlib.decompress(kept.Contents.content)
        assert len(kept.Contents.content) < 1_000  # ~3 kB of drawing operators, deflated
    pdf.save()
    document = pdfium.PdfDocument(out.getvalue())
    assert len(document) == 3 and "page 2 line 44" in document[2].get_textpage().get_text_range()


def test_a_long_pdf_statement_lays_every_line_out() -> None:
    out = io.BytesIO()
    ledger = Ledger(2_000, 250)
    assert write_pdf(out, heading(2_000), ledger.batches()) == 2_000
    document = pdfium.PdfDocument(out.getvalue())
    pages = [document[i].get_textpage().get_text_range() for i in range(len(document))]
    assert "Transactions: 2000" in pages[0] and "Closing balance: 2000.00 EUR" in pages[-1]
    shown = [int(word) for text in pages for word in re.findall(r"line (\d+)", text)]
    assert shown == list(range(2_000))  # every line, once, in order
    assert all(f"Page {n}" in text for n, text in enumerate(pages, start=1))
