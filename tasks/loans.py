"""Paying out approved loans (queue `transfers`)."""

from __future__ import annotations

from core.errors import DependencyUnavailable, TransientError
from core.loans import disburse_loan
from tasks import celery
from tasks.runtime import bank


@celery.task(
    name="loans.disburse",
    autoretry_for=(TransientError, DependencyUnavailable),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=20,
)
def disburse(job_id: str) -> None:
    disburse_loan(bank().db, job_id)
