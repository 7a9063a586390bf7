"""Loans: paying out approved loans and early repayments (queue `transfers`), and the servicing tick (queue
`default`): interest, reminders, collection, late fees."""

from __future__ import annotations

import logging

from core.errors import DependencyUnavailable, TransientError
from core.loans import disburse_loan, repay_loan, service_loans
from tasks import celery
from tasks.runtime import bank, tick

log = logging.getLogger(__name__)


@celery.task(
    name="loans.disburse",
    autoretry_for=(TransientError, DependencyUnavailable),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=20,
)
def disburse(job_id: str) -> None:
    disburse_loan(bank().db, job_id)


@celery.task(
    name="loans.repay",
    autoretry_for=(TransientError, DependencyUnavailable),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=20,
)
def repay(job_id: str) -> None:
    repay_loan(bank().db, job_id)


@tick("loans.service")
def service() -> int:
    report = service_loans(bank())
    if report.overdue or report.late_fees:
        log.info("loans: %d instalment(s) could not be collected, %d late fee(s) charged", report.overdue,
                 report.late_fees)
    return report.collected
