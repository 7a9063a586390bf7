"""Times are stored in UTC and shown in the customer's IANA zone: offsets follow DST, instants round-trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.errors import ValidationFailed
from core.time_zones import check_time_zone, local_isoformat


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "zone", "local"),
    [
        # Europe/Berlin springs forward on 2027-03-28 at 01:00 UTC (02:00 CET becomes 03:00 CEST).
        (_utc(2027, 3, 28, 0, 59, 59), "Europe/Berlin", "2027-03-28T01:59:59+01:00"),
        (_utc(2027, 3, 28, 1, 0), "Europe/Berlin", "2027-03-28T03:00:00+02:00"),
        # ... and falls back on 2027-10-31 at 01:00 UTC: 02:30 local happens twice, with different offsets.
        (_utc(2027, 10, 31, 0, 30), "Europe/Berlin", "2027-10-31T02:30:00+02:00"),
        (_utc(2027, 10, 31, 1, 30), "Europe/Berlin", "2027-10-31T02:30:00+01:00"),
        # America/New_York: 2027-03-14 at 07:00 UTC (EST to EDT) and 2027-11-07 at 06:00 UTC (EDT to EST).
        (_utc(2027, 3, 14, 6, 59), "America/New_York", "2027-03-14T01:59:00-05:00"),
        (_utc(2027, 3, 14, 7, 0), "America/New_York", "2027-03-14T03:00:00-04:00"),
        (_utc(2027, 11, 7, 5, 30), "America/New_York", "2027-11-07T01:30:00-04:00"),
        (_utc(2027, 11, 7, 6, 30), "America/New_York", "2027-11-07T01:30:00-05:00"),
        # The local date can differ from the UTC date.
        (_utc(2027, 12, 31, 23, 30), "Europe/Berlin", "2028-01-01T00:30:00+01:00"),
        (_utc(2027, 1, 1, 2, 0), "America/New_York", "2026-12-31T21:00:00-05:00"),
        (_utc(2027, 6, 1, 12, 0), "UTC", "2027-06-01T12:00:00+00:00"),
    ],
)
def test_local_time_follows_the_zone_offset_at_that_instant(instant: datetime, zone: str, local: str) -> None:
    assert local_isoformat(instant, zone) == local


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"])
@pytest.mark.parametrize(
    "instant", [_utc(2027, 3, 28, 1, 0), _utc(2027, 10, 31, 0, 30), _utc(2027, 10, 31, 1, 30), _utc(2027, 11, 7, 6, 0)]
)
def test_an_instant_stored_as_utc_round_trips(instant: datetime, zone: str) -> None:
    shown = local_isoformat(instant, zone)
    assert shown is not None
    assert datetime.fromisoformat(shown).astimezone(UTC) == instant


def test_naive_values_from_sqlite_are_utc_and_none_stays_none() -> None:
    assert local_isoformat(datetime(2027, 3, 28, 1, 0), "Europe/Berlin") == "2027-03-28T03:00:00+02:00"
    assert local_isoformat(None, "Europe/Berlin") is None


def test_a_stored_zone_the_database_no_longer_knows_shows_utc() -> None:
    assert local_isoformat(_utc(2027, 1, 1, 9, 0), "Mars/Olympus_Mons") == "2027-01-01T09:00:00+00:00"


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kathmandu"])
def test_iana_names_are_accepted(zone: str) -> None:
    assert check_time_zone(zone) == zone


@pytest.mark.parametrize(
    "zone", ["", "Mars/Olympus_Mons", "europe/berlin", "../../etc/passwd", "/etc/localtime", "localtime", "+02:00", 1]
)
def test_anything_else_is_a_validation_error_on_time_zone(zone: object) -> None:
    with pytest.raises(ValidationFailed) as raised:
        check_time_zone(zone)
    assert raised.value.code == "validation_error" and set(raised.value.errors or {}) == {"time_zone"}
