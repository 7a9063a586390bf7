"""Calendar arithmetic of reminders and standing orders: month ends, leap years, weeks, days, end dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from core.schedule_math import (
    DEFAULT_CATCH_UP_DAYS,
    add_months,
    catch_up_days,
    following,
    following_at,
    in_month,
    nth,
    occurrences,
)


def test_monthly_from_the_31st_falls_on_month_ends_and_comes_back():
    start = date(2027, 1, 31)
    dates = list(occurrences(start, "monthly", until=date(2027, 8, 31)))
    assert dates == [
        date(2027, 1, 31),
        date(2027, 2, 28),  # 2027 is not a leap year
        date(2027, 3, 31),  # the anchor is the 31st, not the 28th it fell on in February
        date(2027, 4, 30),
        date(2027, 5, 31),
        date(2027, 6, 30),
        date(2027, 7, 31),
        date(2027, 8, 31),
    ]


def test_leap_years():
    assert following(date(2028, 1, 31), "monthly", date(2028, 1, 31)) == date(2028, 2, 29)
    assert following(date(2028, 1, 29), "monthly", date(2028, 1, 29)) == date(2028, 2, 29)
    assert following(date(2027, 1, 29), "monthly", date(2027, 1, 29)) == date(2027, 2, 28)
    assert in_month(30, 2100, 2) == date(2100, 2, 28)  # divisible by 100, not by 400
    assert in_month(30, 2000, 2) == date(2000, 2, 29)  # divisible by 400
    assert following(date(2028, 2, 29), "daily", date(2028, 2, 29)) == date(2028, 3, 1)
    assert following(date(2027, 2, 28), "daily", date(2027, 2, 28)) == date(2027, 3, 1)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2027, 1, 30), 1, date(2027, 2, 28)),
        (date(2027, 1, 30), 2, date(2027, 3, 30)),
        (date(2027, 12, 31), 2, date(2028, 2, 29)),
        (date(2027, 11, 15), 3, date(2028, 2, 15)),
        (date(2027, 5, 31), 12, date(2028, 5, 31)),
        (date(2027, 3, 1), 0, date(2027, 3, 1)),
    ],
)
def test_nth_monthly_occurrence(start, n, expected):
    assert nth(start, "monthly", n) == expected
    # stepping one occurrence at a time lands on the same dates as counting from the start
    current = start
    for _ in range(n):
        current = following(start, "monthly", current)
    assert current == expected


def test_add_months_across_years_and_backwards():
    assert add_months(date(2027, 12, 31), 1) == date(2028, 1, 31)
    assert add_months(date(2027, 3, 31), -1) == date(2027, 2, 28)
    assert add_months(date(2026, 2, 28), 24, anchor_day=31) == date(2028, 2, 29)


def test_weekly_and_daily():
    assert list(occurrences(date(2027, 2, 22), "weekly", until=date(2027, 3, 22))) == [
        date(2027, 2, 22),
        date(2027, 3, 1),
        date(2027, 3, 8),
        date(2027, 3, 15),
        date(2027, 3, 22),
    ]
    assert list(occurrences(date(2027, 12, 30), "daily", until=date(2028, 1, 2))) == [
        date(2027, 12, 30),
        date(2027, 12, 31),
        date(2028, 1, 1),
        date(2028, 1, 2),
    ]
    assert nth(date(2027, 1, 1), "weekly", 52) == date(2027, 12, 31)


def test_end_dates():
    start = date(2027, 1, 31)
    assert list(occurrences(start, "monthly", until=date(2027, 12, 31), end=date(2027, 3, 30))) == [
        date(2027, 1, 31),
        date(2027, 2, 28),
    ]
    assert list(occurrences(start, "daily", until=date(2027, 12, 31), end=start)) == [start]
    assert list(occurrences(start, "daily", until=date(2027, 1, 30))) == []


def test_a_time_of_day_keeps_its_clock_time_and_day_anchor():
    anchor = datetime(2027, 1, 31, 9, 30, tzinfo=UTC)
    feb = following_at(anchor, "monthly", anchor)
    assert feb == datetime(2027, 2, 28, 9, 30, tzinfo=UTC)
    assert following_at(anchor, "monthly", feb) == datetime(2027, 3, 31, 9, 30, tzinfo=UTC)
    assert following_at(anchor, "weekly", anchor) == datetime(2027, 2, 7, 9, 30, tzinfo=UTC)
    assert following_at(anchor, "daily", anchor).tzinfo is not None


def test_unknown_frequency_is_an_error():
    with pytest.raises(ValueError):
        following(date(2027, 1, 1), "yearly", date(2027, 1, 1))


def test_catch_up_window_setting():
    assert catch_up_days({}) == DEFAULT_CATCH_UP_DAYS == 3
    assert catch_up_days({"BANKQ_CATCH_UP_DAYS": "7"}) == 7
    assert catch_up_days({"BANKQ_CATCH_UP_DAYS": " "}) == 3
    with pytest.raises(ValueError):
        catch_up_days({"BANKQ_CATCH_UP_DAYS": "-1"})
    with pytest.raises(ValueError):
        catch_up_days({"BANKQ_CATCH_UP_DAYS": "three"})
