"""The PDF statement, drawn with ReportLab page by page as batches of lines arrive.

ReportLab writes the file when the document is saved, so it holds every finished page until then. A page is kept
as its deflated content stream (about 2 kB for 45 lines, compressed as the page is finished), never as the entries
or their text: a 1,000,000-line statement holds about 22,000 such pages, tens of MB, whatever the batch size.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING

from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase.pdfdoc import PDFArray, PDFName, PDFStream  # type: ignore[import-untyped]
from reportlab.pdfbase.pdfmetrics import stringWidth  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]
from sqlalchemy import Row

from core.money import format_minor

if TYPE_CHECKING:
    from core.reports.render import Heading

WIDTH, HEIGHT = A4
MARGIN = 18 * mm
LINE = 5.2 * mm
BOTTOM = MARGIN + 2 * LINE
DESCRIPTION_CHARS = 52
FONT, SIZE = "Helvetica", 8.5
DESCRIPTION_X = MARGIN + 30 * mm
AMOUNT_RIGHT, BALANCE_RIGHT = WIDTH - MARGIN - 32 * mm, WIDTH - MARGIN


class _DeflatingCanvas(Canvas):  # type: ignore[misc]
    """A Canvas that deflates each page's content stream as the page is finished instead of when the document is
    saved, so an unsaved document of many pages holds their compressed bytes only. (The page objects are
    ReportLab's own; the stream is marked FlateDecode, so saving does not encode it again.)"""

    def showPage(self) -> None:  # noqa: N802 (ReportLab's name)
        super().showPage()
        page = self._doc.Pages.pages[-1]
        content = page.stream.encode("utf8") if isinstance(page.stream, str) else page.stream
        stream = PDFStream(content=zlib.compress(content))
        stream.dictionary["Filter"] = PDFArray([PDFName("FlateDecode")])
        stream.__Comment__ = "page stream"
        page.Contents, page.stream = stream, None


def write_pdf(out: IO[bytes], heading: Heading, batches: Iterator[Sequence[Row]]) -> int:
    # invariant: no creation time or random document id, so the same statement renders to the same bytes
    pdf = _DeflatingCanvas(out, pagesize=A4, invariant=True, pageCompression=0)
    pdf.setTitle(f"Statement {heading.account_number} {heading.period.first} to {heading.period.last}")
    pdf.setAuthor("bankq")

    def money(minor: int) -> str:
        return f"{format_minor(minor, heading.currency)} {heading.currency}"

    totals, currency = heading.totals, heading.currency
    page = 1
    y = _column_titles(pdf, _summary(pdf, heading, money))
    lines = pdf.beginText()
    lines.setFont(FONT, SIZE)
    count = 0
    for batch in batches:
        for row in batch:
            if y < BOTTOM:
                pdf.drawText(lines)
                _footer(pdf, page)
                pdf.showPage()
                page += 1
                y = _column_titles(pdf, HEIGHT - MARGIN)
                lines = pdf.beginText()
                lines.setFont(FONT, SIZE)
            amount, balance = format_minor(row.amount, currency), format_minor(row.balance_after, currency)
            # One text object per page, positioned cell by cell: far cheaper than a drawString per cell.
            lines.setTextOrigin(MARGIN, y)
            lines.textOut(row.posted_at.strftime("%Y-%m-%d %H:%M"))
            lines.setTextOrigin(DESCRIPTION_X, y)
            lines.textOut(_short(row.description or ""))
            lines.setTextOrigin(AMOUNT_RIGHT - stringWidth(amount, FONT, SIZE), y)
            lines.textOut(amount)
            lines.setTextOrigin(BALANCE_RIGHT - stringWidth(balance, FONT, SIZE), y)
            lines.textOut(balance)
            y -= LINE
            count += 1
    pdf.drawText(lines)
    if count == 0:
        pdf.setFont("Helvetica-Oblique", 9)
        pdf.drawString(MARGIN, y, "No transactions in this period.")
        y -= LINE
    if y < BOTTOM + 3 * LINE:
        _footer(pdf, page)
        pdf.showPage()
        page += 1
        y = HEIGHT - MARGIN
    y -= LINE
    pdf.setFont("Helvetica-Bold", 10)
    pdf.drawString(MARGIN, y, f"Closing balance: {money(totals.closing)}")
    pdf.setFont("Helvetica", 9)
    pdf.drawString(MARGIN, y - LINE, f"Money in: {money(totals.total_in)}   Money out: {money(totals.total_out)}")
    _footer(pdf, page)
    pdf.showPage()
    pdf.save()
    return count


def _summary(pdf: Canvas, heading: Heading, money: Callable[[int], str]) -> float:
    totals = heading.totals
    y = HEIGHT - MARGIN
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(MARGIN, y, "bankq account statement")
    y -= 2 * LINE
    pdf.setFont("Helvetica", 10)
    for text in (
        f"Account number: {heading.account_number}",
        f"Account holder: {heading.owner_name}",
        f"Currency: {heading.currency}",
        f"Period: {heading.period.first.isoformat()} to {heading.period.last.isoformat()} (UTC)",
        f"Opening balance: {money(totals.opening)}",
        f"Money in: {money(totals.total_in)}",
        f"Money out: {money(totals.total_out)}",
        f"Closing balance: {money(totals.closing)}",
        f"Transactions: {totals.entry_count}",
    ):
        pdf.drawString(MARGIN, y, text)
        y -= LINE
    return y - LINE


def _column_titles(pdf: Canvas, y: float) -> float:
    pdf.setFont("Helvetica-Bold", 9)
    pdf.drawString(MARGIN, y, "Posted (UTC)")
    pdf.drawString(DESCRIPTION_X, y, "Description")
    pdf.drawRightString(AMOUNT_RIGHT, y, "Amount")
    pdf.drawRightString(BALANCE_RIGHT, y, "Balance")
    pdf.line(MARGIN, y - 1.5 * mm, WIDTH - MARGIN, y - 1.5 * mm)
    return y - LINE - 1 * mm


def _footer(pdf: Canvas, page: int) -> None:
    pdf.setFont("Helvetica", 8)
    pdf.drawRightString(WIDTH - MARGIN, MARGIN / 2, f"Page {page}")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1] + "…"
