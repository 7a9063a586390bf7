"""Rendering statements and the monthly statement tick (queue `default`)."""

from __future__ import annotations

from core import outbox
from core.errors import DependencyUnavailable, TransientError
from core.reports import monthly, worker
from tasks import celery
from tasks.publisher import send, send_many
from tasks.runtime import bank, tick

MAX_ATTEMPTS = 4


@celery.task(name="reports.render", bind=True, max_retries=MAX_ATTEMPTS - 1, soft_time_limit=300, time_limit=330)
def render(self, job_id: str) -> str | None:  # type: ignore[no-untyped-def]
    try:
        return worker.process_report(bank(), job_id)
    except (TransientError, DependencyUnavailable) as exc:
        raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries * 5)) from exc
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            return worker.give_up(bank(), job_id, f"{type(exc).__name__}: {exc}")
        raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries * 5)) from exc


@tick("reports.send_monthly_statements")
def send_monthly_statements() -> int:
    queued = monthly.queue_monthly_statements(bank())
    return queued + (outbox.relay(bank().db, send, grace_seconds=0, send_many=send_many) if queued else 0)
