"""The one clock: frozen and moved in tests, UTC everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.clock import Clock, as_utc, clock, isoformat, utcnow

AT = datetime(2024, 2, 29, 23, 59, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    clock.unfreeze()
    yield
    clock.unfreeze()


def test_runs_in_utc_when_not_frozen() -> None:
    before = datetime.now(UTC)
    now = utcnow()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)


def test_freeze_advance_unfreeze() -> None:
    clock.freeze(AT)
    assert utcnow() == AT
    assert utcnow() == AT
    clock.advance(seconds=45)
    assert utcnow() == datetime(2024, 3, 1, 0, 0, 15, tzinfo=UTC)
    clock.advance(days=1, hours=1)
    assert utcnow() == datetime(2024, 3, 2, 1, 0, 15, tzinfo=UTC)
    clock.unfreeze()
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(seconds=5)


def test_advance_from_real_time_freezes_there() -> None:
    before = datetime.now(UTC)
    clock.advance(hours=2)
    frozen = utcnow()
    assert before + timedelta(hours=2) <= frozen <= datetime.now(UTC) + timedelta(hours=2)
    assert utcnow() == frozen


def test_clocks_are_independent() -> None:
    mine = Clock()
    mine.freeze(AT)
    assert mine.now() == AT
    assert utcnow() != AT


def test_as_utc_treats_naive_as_utc() -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5)
    assert as_utc(naive) == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert as_utc(naive).tzinfo is UTC


def test_as_utc_converts_other_offsets() -> None:
    paris = datetime(2024, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    converted = as_utc(paris)
    assert converted == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert converted.utcoffset() == timedelta(0)
    assert converted.hour == 3


def test_as_utc_keeps_utc() -> None:
    assert as_utc(AT) == AT


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05Z"),
        (datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), "2024-01-02T03:04:05.123456Z"),
        (datetime(2024, 1, 2, 0, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))), "2024-01-02T06:00:00Z"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=9))), "2024-01-01T18:04:05Z"),
    ],
)
def test_isoformat_is_utc_with_z(value: datetime, text: str) -> None:
    assert isoformat(value) == text


def test_isoformat_of_none_is_none() -> None:
    assert isoformat(None) is None
