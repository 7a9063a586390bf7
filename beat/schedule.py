"""Task names and timings for celery beat. Every tick is idempotent, so a second beat doubles nothing."""

from __future__ import annotations

from typing import Any

from core.settings import Settings


def beat_schedule_for(settings: Settings) -> dict[str, dict[str, Any]]:
    relay = max(0.5, settings.outbox_relay_seconds)
    return {
        "relay-outbox": {"task": "maintenance.relay_outbox", "schedule": relay},
        "release-scheduled-transfers": {"task": "maintenance.release_scheduled_transfers", "schedule": 5.0},
        "redrive-stuck-jobs": {
            "task": "maintenance.redrive_stuck_jobs",
            "schedule": float(max(1, min(30, settings.redrive_after_seconds // 2))),
        },
        "redrive-notifications": {"task": "maintenance.redrive_notifications", "schedule": 30.0},
        "expire-unconfirmed-transfers": {"task": "maintenance.expire_unconfirmed_transfers", "schedule": 15.0},
        "purge-idempotency-keys": {"task": "maintenance.purge_idempotency_keys", "schedule": 3600.0},
    }
