"""Posting transfers, deposits and withdrawals (queue `transfers`)."""

from __future__ import annotations

from core.errors import DependencyUnavailable, TransientError
from core.limits import DefaultLimits
from core.transfers import post_transfer_batch, post_transfer_jobs, post_transfer_jobs_many
from tasks import celery
from tasks.runtime import bank


@celery.task(
    name="transfers.post",
    bind=True,
    autoretry_for=(TransientError, DependencyUnavailable),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=20,
)
def post(self, job_id: str) -> None:  # type: ignore[no-untyped-def]
    b = bank()
    report = post_transfer_jobs(
        b.db, job_id, batch_size=b.settings.post_batch_size, limits=DefaultLimits.of(b.settings)
    )
    if report.own_job_busy:
        # Another worker holds this job in its batch; look again shortly rather than trust it blindly.
        raise self.retry(countdown=1, max_retries=60)


@celery.task(
    name="transfers.post_many",
    bind=True,
    autoretry_for=(TransientError, DependencyUnavailable),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=20,
)
def post_many(self, job_ids: list[str]) -> None:  # type: ignore[no-untyped-def]
    """The jobs of many accepted transfers, published as one message (core.outbox.MANY)."""
    b = bank()
    report = post_transfer_jobs_many(
        b.db, job_ids, batch_size=b.settings.post_batch_size, limits=DefaultLimits.of(b.settings)
    )
    if report.own_job_busy:
        raise self.retry(countdown=1, max_retries=60)


@celery.task(
    name="transfers.post_batch",
    bind=True,
    autoretry_for=(TransientError, DependencyUnavailable),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=20,
)
def post_batch(self, job_id: str) -> None:  # type: ignore[no-untyped-def]
    b = bank()
    if post_transfer_batch(b.db, job_id, limits=DefaultLimits.of(b.settings)).own_job_busy:
        # A duplicate delivery holds the batch; look again shortly (it is finished or rolled back by then).
        raise self.retry(countdown=1, max_retries=60)
