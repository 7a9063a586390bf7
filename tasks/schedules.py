"""Beat ticks for customers' schedules (queue `default`): reminders and standing orders. Each tick is a
database-guarded claim, so any number of beats and workers running them double nothing."""

from __future__ import annotations

import logging

from core import reminders, standing_orders
from tasks.runtime import bank, tick

log = logging.getLogger(__name__)


@tick("schedules.send_due_reminders")
def send_due_reminders() -> int:
    report = reminders.send_due_reminders(bank())
    if report.skipped:
        log.warning("schedules: %d reminder occurrence(s) too old to send, recorded as skipped", report.skipped)
    return report.sent


@tick("schedules.run_due_standing_orders")
def run_due_standing_orders() -> int:
    report = standing_orders.run_due_standing_orders(bank())
    if report.skipped:
        log.warning("schedules: %d standing order occurrence(s) too old to pay, recorded as skipped", report.skipped)
    return report.requested
