"""Calendar arithmetic for repeating things: daily, weekly, monthly (the 29th-31st fall on a short month's last
day and come back in longer months), and the catch-up window after downtime. Pure functions of UTC values."""

from __future__ import annotations

import calendar
import os
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta

FREQUENCIES = ("daily", "weekly", "monthly")
CATCH_UP_DAYS_SETTING = "BANKQ_CATCH_UP_DAYS"
DEFAULT_CATCH_UP_DAYS = 3
STEP_DAYS = {"daily": 1, "weekly": 7}


def last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def in_month(anchor_day: int, year: int, month: int) -> date:
    """The anchor day in that month, or the month's last day when the month is shorter."""
    return date(year, month, min(anchor_day, last_day(year, month)))


def add_months(day: date, months: int, *, anchor_day: int | None = None) -> date:
    """`months` calendar months after `day`, on anchor_day (default: day's own) or the month's last day."""
    index = day.year * 12 + (day.month - 1) + months
    return in_month(anchor_day or day.day, index // 12, index % 12 + 1)


def nth(start: date, frequency: str, n: int) -> date:
    """The n-th occurrence (0 is `start`) of a schedule anchored on `start`."""
    if frequency == "monthly":
        return add_months(start, n)
    return start + timedelta(days=STEP_DAYS[_known(frequency)] * n)


def following(start: date, frequency: str, current: date) -> date:
    """The occurrence after `current`, itself an occurrence of the schedule anchored on `start`."""
    if frequency == "monthly":
        return add_months(current, 1, anchor_day=start.day)
    return current + timedelta(days=STEP_DAYS[_known(frequency)])


def following_at(anchor: datetime, frequency: str, current: datetime) -> datetime:
    """Like `following` for a time of day: the same wall-clock time (UTC) on the next occurrence's date."""
    day = following(anchor.date(), frequency, current.date())
    return datetime.combine(day, anchor.timetz())


def occurrences(start: date, frequency: str, *, until: date, end: date | None = None) -> Iterator[date]:
    """Every occurrence from `start` up to and including `until` (and `end`, if the schedule ends)."""
    last = min(until, end) if end else until
    current = start
    while current <= last:
        yield current
        current = following(start, frequency, current)


def catch_up_days(environ: Mapping[str, str] | None = None) -> int:
    """How far back missed occurrences are still acted on (BANKQ_CATCH_UP_DAYS, default 3); older ones are
    recorded as skipped."""
    raw = (os.environ if environ is None else environ).get(CATCH_UP_DAYS_SETTING, "").strip()
    if not raw:
        return DEFAULT_CATCH_UP_DAYS
    days = int(raw)
    if days < 0:
        raise ValueError(f"{CATCH_UP_DAYS_SETTING}={raw!r} must be zero or more")
    return days


def _known(frequency: str) -> str:
    if frequency not in FREQUENCIES:
        raise ValueError(f"unknown frequency {frequency!r}")
    return frequency
