"""Beat ticks on the `default` queue: relay the outbox, release due work, re-drive stuck jobs and notifications."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from core import idempotency, jobs, notifications, otp, outbox
from core.errors import DependencyUnavailable
from core.kyc import reminders
from core.transfers import confirmation, receipts, release_due_scheduled
from tasks.publisher import send, send_many
from tasks.runtime import bank, tick

log = logging.getLogger(__name__)


@tick("maintenance.relay_outbox")
def relay_outbox() -> int:
    return outbox.relay(bank().db, send, send_many=send_many)


@tick("maintenance.release_scheduled_transfers")
def release_scheduled_transfers() -> int:
    released = release_due_scheduled(bank())
    return released + outbox.relay(bank().db, send, grace_seconds=0, send_many=send_many)


@tick("maintenance.redrive_stuck_jobs")
def redrive_stuck_jobs() -> int:
    b = bank()
    redriven = jobs.redrive_stuck(b.db, older_than_seconds=b.settings.redrive_after_seconds)
    if redriven:
        log.warning("re-driving %d stuck job(s)", redriven)
    return redriven + outbox.relay(b.db, send, grace_seconds=0, send_many=send_many)


@tick("maintenance.redrive_notifications")
def redrive_notifications() -> int:
    b = bank()
    return notifications.redrive_stuck(b) + outbox.relay(b.db, send, grace_seconds=0, send_many=send_many)


@tick("maintenance.expire_unconfirmed_transfers")
def expire_unconfirmed_transfers() -> int:
    return confirmation.expire_unconfirmed(bank())


@tick("maintenance.remind_unverified_kyc")
def remind_unverified_kyc() -> int:
    return reminders.remind_unverified(bank())


@tick("maintenance.send_transfer_receipts")
def send_transfer_receipts() -> int:
    return receipts.send_receipts(bank())


@tick("maintenance.purge_old_codes")
def purge_old_codes() -> int:
    return otp.purge_old_codes(bank().db)


@tick("maintenance.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    return idempotency.purge_expired(bank().db)


@worker_ready.connect
def _relay_on_start(**_: object) -> None:
    """A worker that starts after an outage publishes what was accepted meanwhile."""
    try:
        outbox.relay(bank().db, send, grace_seconds=0, send_many=send_many)
    except DependencyUnavailable as exc:  # beat's relay tick sends it once the database is back
        log.warning("start-up outbox relay skipped: %s", exc.detail)
    except Exception:  # never keep a worker from starting
        log.exception("start-up outbox relay failed")
