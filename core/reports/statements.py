"""Asking for a statement (a job on the `default` queue), reading its report and handing out its file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core import audit, jobs
from core.accounts import visible_account
from core.bank import Bank
from core.clock import isoformat, utcnow
from core.errors import Conflict, Gone, NotFound, ValidationFailed
from core.idempotency import Accepted, accept, fingerprint
from core.models import Account, Report, User, new_id
from core.money import format_minor
from core.reports.render import CONTENT_TYPES
from core.reports.worker import file_name, storage_dir
from core.users import is_staff

FORMATS = tuple(CONTENT_TYPES)
MAX_DAYS = 366


@dataclass(frozen=True)
class Download:
    path: Path
    content_type: str
    filename: str


def check_period(first: date, last: date) -> None:
    if first > last:
        raise ValidationFailed("The period ends before it starts.", errors={"to": ["Must not be before `from`."]})
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationFailed(
            "The period is too long.", code="period_too_long", errors={"to": [f"At most {MAX_DAYS} days after `from`."]}
        )
    if last > utcnow().date():
        raise ValidationFailed("The period has not ended.", errors={"to": ["Must not be after today (UTC)."]})


def new_report(
    s: Session, *, account: Account, user_id: str, first: date, last: date, format: str, monthly: bool = False
) -> tuple[Report, Any]:
    """The report row and its queued job, in the caller's transaction (the outbox row included)."""
    report_id = new_id()
    job = jobs.new_job(
        s, kind="statement", user_id=user_id, resource_type="report", resource_id=report_id, job_id=new_id()
    )
    report = Report(
        id=report_id,
        account_id=account.id,
        requested_by=user_id,
        job_id=job.id,
        format=format,
        period_from=first,
        period_to=last,
        monthly=monthly,
        status="processing",
        created_at=utcnow(),
    )
    s.add(report)
    s.flush()
    jobs.enqueue(s, job)
    return report, job


def request_statement(
    bank: Bank, user: User, account_id: str, *, first: date, last: date, format: str, idempotency_key: str | None
) -> Accepted:
    if format not in FORMATS:
        raise ValidationFailed("Unknown format.", errors={"format": ["Must be pdf or csv."]})
    check_period(first, last)
    body = {"account_id": account_id, "from": first.isoformat(), "to": last.isoformat(), "format": format}

    def create(s: Session) -> tuple[int, dict[str, Any], str | None]:
        account = visible_account(s, user, account_id)
        report, job = new_report(s, account=account, user_id=user.id, first=first, last=last, format=format)
        audit.record(
            s,
            user.id,
            "report.requested",
            f"report:{report.id}",
            account_id=account.id,
            format=format,
            period=f"{first.isoformat()}/{last.isoformat()}",
        )
        return 202, jobs.job_view(job), job.id

    return accept(
        bank.db,
        user_id=user.id,
        key=idempotency_key,
        request_fingerprint=fingerprint("POST", f"/api/v1/accounts/{account_id}/statements", body),
        create=create,
        ttl_seconds=bank.settings.idempotency_ttl_seconds,
    )


def report_view(report: Report, currency: str) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": report.id,
        "status": report.status,
        "format": report.format,
        "account_id": report.account_id,
        "from": report.period_from.isoformat(),
        "to": report.period_to.isoformat(),
        "created_at": isoformat(report.created_at),
        "ready_at": isoformat(report.ready_at) if report.ready_at else None,
        "size": report.size_bytes,
        "sha256": report.sha256,
        "job_id": report.job_id,
        "summary": None,
    }
    if report.status == "ready" and report.opening_balance is not None:
        view["summary"] = {
            "currency": currency,
            "entries": report.entry_count,
            "opening_balance": format_minor(report.opening_balance, currency),
            "total_in": format_minor(report.total_in or 0, currency),
            "total_out": format_minor(report.total_out or 0, currency),
            "closing_balance": format_minor(report.closing_balance or 0, currency),
        }
    return view


def _visible(s: Session, user: User, report_id: str) -> tuple[Report, Account]:
    """The report if the user owns its account or is staff; otherwise 404, never revealing that it exists."""
    report = s.get(Report, report_id) if isinstance(report_id, str) and len(report_id) <= 36 else None
    account = s.get(Account, report.account_id) if report else None
    if report is None or account is None or not (is_staff(user) or account.owner_id == user.id):
        raise NotFound("No such report.", code="report_not_found")
    return report, account


def get_report(bank: Bank, user: User, report_id: str) -> dict[str, Any]:
    with bank.db.transaction() as s:
        report, account = _visible(s, user, report_id)
        return report_view(report, account.currency)


def download(bank: Bank, user: User, report_id: str) -> Download:
    with bank.db.transaction() as s:
        report, account = _visible(s, user, report_id)
    if report.status == "processing":
        raise Conflict("The report is still being rendered.", code="report_not_ready", headers={"Retry-After": "1"})
    if report.status == "failed" or not report.stored_name:
        raise Conflict("The report could not be rendered; request a new one.", code="report_failed")
    path = storage_dir(bank) / report.stored_name
    if not path.is_file():
        raise Gone("The report's file is no longer kept; request a new one.", code="report_gone")
    return Download(path, CONTENT_TYPES[report.format], file_name(report, account.number))
