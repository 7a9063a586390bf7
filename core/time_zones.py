"""Customers' time zones: IANA names, for display only. Every instant is stored and computed in UTC."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from core.clock import as_utc
from core.errors import ValidationFailed

DEFAULT = "UTC"
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})  # files some systems keep beside the tz database


@cache
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - NOT_ZONES


def check_time_zone(name: object) -> str:
    """The name itself when it is an IANA zone such as Europe/Berlin; otherwise 422 on the field time_zone."""
    if not isinstance(name, str) or name not in known_zones():
        raise ValidationFailed(
            "Unknown time zone.", errors={"time_zone": ["An IANA time zone name such as Europe/Berlin."]}
        )
    return name


def zone(name: str | None) -> ZoneInfo:
    """A stored name that the installed tz database no longer knows shows as UTC rather than failing."""
    return ZoneInfo(name if name is not None and name in known_zones() else DEFAULT)


def local_isoformat(value: datetime | None, name: str | None) -> str | None:
    """ISO 8601 in the zone's local time with its offset at that instant, e.g. 2027-03-28T03:00:00+02:00."""
    if value is None:
        return None
    return as_utc(value).astimezone(zone(name)).isoformat()
