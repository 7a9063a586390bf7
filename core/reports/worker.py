"""The worker's side of a statement: claim the job, render outside any transaction, record the file and the end.

Duplicate deliveries are no-ops: only one claim wins (a conditional update under a row lock), and only the
attempt that still holds the job records its file. Each attempt writes its own file name, so a late loser can
never replace the file whose size and sha256 the winner recorded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, jobs
from core.bank import Bank
from core.clock import utcnow
from core.models import Account, Job, Report, User
from core.notifications import Attachment, fits, queue_notification
from core.reports.render import BATCH_SIZE, CONTENT_TYPES, WRITERS, Heading, Period, Totals, entry_batches, totals_for

log = logging.getLogger(__name__)
# A running statement job untouched this long belongs to a dead worker (the task's hard limit is 330 s).
LEASE = timedelta(minutes=6)
NOTICE_NAMESPACE = uuid.UUID("8d0b6a3e-9a53-4c3e-9b7c-3f1c5cbe2a11")
REPORTS_FOLDER = "reports"  # under the data folder


@dataclass(frozen=True)
class Claim:
    job_id: str
    attempt: int
    report_id: str
    account_id: str
    format: str
    period: Period


@dataclass(frozen=True)
class Rendered:
    stored_name: str
    size: int
    sha256: str
    totals: Totals
    lines: int


def storage_dir(bank: Bank) -> Path:
    path = bank.settings.data_dir / REPORTS_FOLDER
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def claim(bank: Bank, job_id: str) -> Claim | None:
    with bank.db.transaction() as s:
        job = jobs.claim_leased(s, job_id, "statement", LEASE)
        if job is None:
            return None
        report = s.scalar(select(Report).where(Report.job_id == job_id))
        if report is None:
            jobs.finish(job, "failed", error_code="invalid_state", error_message="The report is gone.")
            return None
        jobs.start_attempt(job)
        return Claim(
            job.id,
            job.attempts,
            report.id,
            report.account_id,
            report.format,
            Period(report.period_from, report.period_to),
        )


def process_report(bank: Bank, job_id: str, *, batch_size: int = BATCH_SIZE) -> str | None:
    """ "ready", or None when there was nothing to do (a duplicate delivery, another worker's lease)."""
    taken = claim(bank, job_id)
    if taken is None:
        return None
    with bank.db.recording_failure(lambda s: _release(s, taken)):
        rendered = render_file(bank, taken, batch_size)
    return _record(bank, taken, rendered)


def render_file(bank: Bank, taken: Claim, batch_size: int) -> Rendered:
    """Write to a temporary name, fsync, then rename: a reader sees the whole file or none."""
    folder = storage_dir(bank)
    name = f"{taken.report_id}-{taken.attempt}.{taken.format}"
    staged = folder / f".{name}.{os.getpid()}.tmp"
    with bank.db.transaction() as s:
        account = s.get(Account, taken.account_id)
        assert account is not None
        owner = s.get(User, account.owner_id) if account.owner_id else None
        totals = totals_for(s, account.id, taken.period)
        heading = Heading(account.number, owner.full_name if owner else "", account.currency, taken.period, totals)
        try:
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                lines = WRITERS[taken.format](
                    out, heading, entry_batches(s, account.id, taken.period, totals, batch_size)
                )
                out.flush()
                os.fsync(out.fileno())
            os.replace(staged, folder / name)
        finally:
            staged.unlink(missing_ok=True)
    if lines != totals.entry_count:
        raise RuntimeError(f"statement {taken.report_id}: {lines} lines rendered, {totals.entry_count} expected")
    digest, size = _sha256(folder / name)
    return Rendered(name, size, digest, totals, lines)


def _sha256(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _release(s: Session, taken: Claim) -> None:
    """This attempt failed; put the job back so the retry (or the re-drive) can claim it at once."""
    job = s.get(Job, taken.job_id, with_for_update=True)
    if job is not None and job.status == "running" and job.attempts == taken.attempt:
        job.status, job.updated_at = "queued", utcnow()


def _record(bank: Bank, taken: Claim, rendered: Rendered) -> str | None:
    with bank.db.transaction() as s:
        job = s.get(Job, taken.job_id, with_for_update=True)
        if job is None or job.status in jobs.TERMINAL or job.attempts != taken.attempt:
            (storage_dir(bank) / rendered.stored_name).unlink(missing_ok=True)
            return None  # another worker took over after our lease expired; its file counts
        report = s.get(Report, taken.report_id, with_for_update=True)
        assert report is not None
        totals = rendered.totals
        report.status, report.stored_name, report.ready_at = "ready", rendered.stored_name, utcnow()
        report.size_bytes, report.sha256, report.entry_count = rendered.size, rendered.sha256, rendered.lines
        report.opening_balance, report.closing_balance = totals.opening, totals.closing
        report.total_in, report.total_out = totals.total_in, totals.total_out
        jobs.finish(job, "succeeded", result={"report_id": report.id, "status": "ready"})
        audit.record(s, None, "report.ready", f"report:{report.id}", format=report.format, size=rendered.size)
        if report.monthly:
            _email_owner(s, bank, report)
        return "ready"


def file_name(report: Report, account_number: str) -> str:
    """What the owner sees: as a download, and as the monthly email's attachment."""
    period = f"{report.period_from.isoformat()}-{report.period_to.isoformat()}"
    return f"statement-{account_number}-{period}.{report.format}"


def _email_owner(s: Session, bank: Bank, report: Report) -> None:
    """The monthly statement's email with its PDF attached (unless larger than BANKQ_MAIL_ATTACHMENT_MAX_BYTES: then
    it says where to download it), queued in the transaction that records the file: one per report, under a
    deterministic notification id, so a second could not be stored."""
    account = s.get(Account, report.account_id)
    owner = s.get(User, account.owner_id) if account and account.owner_id else None
    if account is None or owner is None or owner.status != "active" or not owner.monthly_statements:
        return
    attachment = None
    if report.stored_name and report.sha256 and fits(report.size_bytes, bank.settings):
        attachment = Attachment(path=f"{REPORTS_FOLDER}/{report.stored_name}",
                                filename=file_name(report, account.number), content_type=CONTENT_TYPES[report.format],
                                size=report.size_bytes or 0, sha256=report.sha256)
    queue_notification(
        s,
        user=owner,
        channel="email",
        template="monthly_statement",
        context={
            "account_number": account.number,
            "month": _month_name(report.period_from),
            "download_path": f"/api/v1/reports/{report.id}/download",
            "attached": attachment is not None,
        },
        notification_id=str(uuid.uuid5(NOTICE_NAMESPACE, f"monthly-statement:{report.id}")),
        attachment=attachment,
    )


def _month_name(first: date) -> str:
    return first.strftime("%B %Y")


def give_up(bank: Bank, job_id: str, error: str) -> str | None:
    """Rendering kept failing: the report is `failed` and the job fails with `report_failed`."""
    log.error("reports: giving up rendering job %s: %s", job_id, error)
    with bank.db.transaction() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status in jobs.TERMINAL:
            return None
        report = s.scalar(select(Report).where(Report.job_id == job_id).with_for_update())
        if report is not None:
            report.status = "failed"
        jobs.finish(job, "failed", error_code="report_failed", error_message="The statement could not be rendered.")
        audit.record(s, None, "report.failed", f"report:{report.id if report else job_id}")
        return "failed"
