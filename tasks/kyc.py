"""Reading identity documents (queue `kyc`)."""

from __future__ import annotations

import os

from core.errors import DependencyUnavailable, TransientError
from core.kyc import documents
from tasks import celery
from tasks.runtime import bank

# tesseract is several times faster single-threaded on small machines; workers scale by processes.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
MAX_ATTEMPTS = 4


@celery.task(name="kyc.read", bind=True, max_retries=MAX_ATTEMPTS - 1, soft_time_limit=120, time_limit=150)
def read(self, job_id: str) -> str | None:  # type: ignore[no-untyped-def]
    from core.mrz import read_mrz

    try:
        return documents.process_document(bank(), job_id, read_mrz)
    except (TransientError, DependencyUnavailable) as exc:
        raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries * 5)) from exc
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            return documents.give_up(bank(), job_id, f"{type(exc).__name__}: {exc}")
        raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries * 5)) from exc
