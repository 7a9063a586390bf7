"""The PDF statement, drawn with ReportLab page by page as batches of lines arrive."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING

from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
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


def write_pdf(out: IO[bytes], heading: Heading, batches: Iterator[Sequence[Row]]) -> int:
    # invariant: no creation time or random document id, so the same statement renders to the same bytes
    pdf = Canvas(out, pagesize=A4, invariant=True, pageCompression=1)
    pdf.setTitle(f"Statement {heading.account_number} {heading.period.first} to {heading.period.last}")
    pdf.setAuthor("bankq")

    def money(minor: int) -> str:
        return f"{format_minor(minor, heading.currency)} {heading.currency}"

    totals = heading.totals
    page = 1
    y = _summary(pdf, heading, money)
    y = _column_titles(pdf, y)
    lines = 0
    for batch in batches:
        for row in batch:
            if y < BOTTOM:
                _footer(pdf, page)
                pdf.showPage()
                page += 1
                y = _column_titles(pdf, HEIGHT - MARGIN)
            pdf.setFont("Helvetica", 8.5)
            pdf.drawString(MARGIN, y, row.posted_at.strftime("%Y-%m-%d %H:%M"))
            pdf.drawString(MARGIN + 30 * mm, y, _short(row.description or ""))
            pdf.drawRightString(WIDTH - MARGIN - 32 * mm, y, format_minor(row.amount, heading.currency))
            pdf.drawRightString(WIDTH - MARGIN, y, format_minor(row.balance_after, heading.currency))
            y -= LINE
            lines += 1
    if lines == 0:
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
    return lines


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
    pdf.drawString(MARGIN + 30 * mm, y, "Description")
    pdf.drawRightString(WIDTH - MARGIN - 32 * mm, y, "Amount")
    pdf.drawRightString(WIDTH - MARGIN, y, "Balance")
    pdf.line(MARGIN, y - 1.5 * mm, WIDTH - MARGIN, y - 1.5 * mm)
    return y - LINE - 1 * mm


def _footer(pdf: Canvas, page: int) -> None:
    pdf.setFont("Helvetica", 8)
    pdf.drawRightString(WIDTH - MARGIN, MARGIN / 2, f"Page {page}")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1] + "…"
