"""Task names and timings for celery beat. Every tick is idempotent, so a second beat doubles nothing."""

from __future__ import annotations

import os
from typing import Any

from core.settings import Settings

SCHEDULE_TICK_SETTING = "BANKQ_SCHEDULE_TICK_SECONDS"
WEBHOOK_TICK_SETTING = "BANKQ_WEBHOOK_TICK_SECONDS"
LOANS_TICK_SETTING = "BANKQ_LOANS_TICK_SECONDS"


def beat_schedule_for(settings: Settings) -> dict[str, dict[str, Any]]:
    relay = max(0.5, settings.outbox_relay_seconds)
    # Reminders and standing orders: how often due occurrences are looked for (a stale tick is dropped).
    tick = max(0.5, float(os.environ.get(SCHEDULE_TICK_SETTING) or 10.0))
    schedules = {"expires": tick * 2}
    # Webhooks: the net under the dispatchers that webhooks workers run on every commit (tasks.webhooks): how often
    # beat fans out new job events and claims due deliveries in case no dispatcher did.
    webhook_tick = max(0.5, float(os.environ.get(WEBHOOK_TICK_SETTING) or 10.0))
    # Loans: each run does a loan's day at most once, so ticking often only costs a query a loan.
    loans_tick = max(1.0, float(os.environ.get(LOANS_TICK_SETTING) or 3600.0))
    return {
        "relay-outbox": {"task": "maintenance.relay_outbox", "schedule": relay},
        "release-scheduled-transfers": {"task": "maintenance.release_scheduled_transfers", "schedule": 5.0},
        "redrive-stuck-jobs": {
            "task": "maintenance.redrive_stuck_jobs",
            "schedule": float(max(1, min(30, settings.redrive_after_seconds // 2))),
        },
        "redrive-notifications": {"task": "maintenance.redrive_notifications", "schedule": 30.0},
        "expire-unconfirmed-transfers": {"task": "maintenance.expire_unconfirmed_transfers", "schedule": 15.0},
        "remind-unverified-kyc": {"task": "maintenance.remind_unverified_kyc", "schedule": 3600.0},
        "send-transfer-receipts": {"task": "maintenance.send_transfer_receipts", "schedule": 5.0},
        "purge-old-codes": {"task": "maintenance.purge_old_codes", "schedule": 3600.0},
        "purge-idempotency-keys": {"task": "maintenance.purge_idempotency_keys", "schedule": 3600.0},
        # Acts in the first days of a month only; hourly, so a restart on the 1st still sends that day.
        "send-monthly-statements": {"task": "reports.send_monthly_statements", "schedule": 3600.0},
        # Loans: the day's interest, reminders, collections and late fees, each at most once a day; hourly, so the
        # day's work is done early in the day and a restart loses nothing.
        "service-loans": {"task": "loans.service", "schedule": loans_tick, "options": {"expires": loans_tick}},
        "send-due-reminders": {"task": "schedules.send_due_reminders", "schedule": tick, "options": schedules},
        "dispatch-webhooks": {
            "task": "webhooks.dispatch",
            "schedule": webhook_tick,
            "options": {"expires": webhook_tick * 2},
        },
        "run-due-standing-orders": {
            "task": "schedules.run_due_standing_orders",
            "schedule": tick,
            "options": schedules,
        },
    }
