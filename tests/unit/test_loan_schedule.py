"""The annuity schedule against hand-computed examples: rounding, the last instalment, month ends, 29 February."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.errors import ValidationFailed
from core.loans.products import format_rate, parse_rate
from core.loans.schedule import annuity_schedule, monthly_payment


def rows(principal, rate, n, start):
    return [
        (i.number, i.due_date, i.payment, i.principal, i.interest) for i in annuity_schedule(principal, rate, n, start)
    ]


def test_three_months_at_twelve_percent_by_hand():
    # 1000.00 at 12 % a year: r = 0.01, payment = 10 / (1 - 1.01^-3) = 340.0221... -> 340.02.
    # Interest 1000.00 x 0.01 = 10.00; 669.98 x 0.01 = 6.6998 -> 6.70; 336.66 x 0.01 = 3.3666 -> 3.37.
    assert rows(100_000, Decimal("0.12"), 3, date(2025, 1, 15)) == [
        (1, date(2025, 2, 15), 34_002, 33_002, 1_000),
        (2, date(2025, 3, 15), 34_002, 33_332, 670),
        (3, date(2025, 4, 15), 34_003, 33_666, 337),  # the last absorbs the rounding
    ]


def test_interest_rounds_half_up():
    # 100.00 at 6 %: r = 0.005, first interest 0.50 exactly; payment 100 x 0.005 / (1 - 1.005^-2) = 50.3753 -> 50.38;
    # 49.88 repaid leaves 50.12; second interest 50.12 x 0.005 = 0.2506 -> 0.25; last payment 50.12 + 0.25 = 50.37.
    assert rows(10_000, Decimal("0.06"), 2, date(2025, 6, 1)) == [
        (1, date(2025, 7, 1), 5_038, 4_988, 50),
        (2, date(2025, 8, 1), 5_037, 5_012, 25),
    ]
    # 1.01 at 6 %: r = 0.005, 101 x 0.005 = 0.505 minor units -> rounds half up to 1.
    assert annuity_schedule(101, Decimal("0.06"), 1, date(2025, 1, 1))[0].interest == 1


def test_month_ends_clamp_and_come_back_through_29_february():
    dates = [i.due_date for i in annuity_schedule(120_000, Decimal("0.0799"), 4, date(2023, 12, 31))]
    assert dates == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]
    dates = [i.due_date for i in annuity_schedule(120_000, Decimal("0.0799"), 2, date(2025, 1, 31))]
    assert dates == [date(2025, 2, 28), date(2025, 3, 31)]
    # Disbursed on a 29 February: the anchor is the 29th, and February of a common year has 28 days.
    dates = [i.due_date for i in annuity_schedule(120_000, Decimal("0.0799"), 12, date(2024, 2, 29))]
    assert dates[0] == date(2024, 3, 29) and dates[-1] == date(2025, 2, 28)


def test_zero_rate_splits_the_principal():
    assert rows(100_000, Decimal("0"), 3, date(2025, 1, 1)) == [
        (1, date(2025, 2, 1), 33_333, 33_333, 0),
        (2, date(2025, 3, 1), 33_333, 33_333, 0),
        (3, date(2025, 4, 1), 33_334, 33_334, 0),
    ]


@pytest.mark.parametrize(
    "principal, rate, n",
    [(500_000, "0.0799", 36), (1, "0.2", 12), (2_500_000_00, "0.35", 480), (999_99, "0.000001", 7), (10_000, "1", 24)],
)
def test_principals_sum_exactly_and_payments_are_level(principal, rate, n):
    items = annuity_schedule(principal, Decimal(rate), n, date(2025, 5, 31))
    assert len(items) == n and [i.number for i in items] == list(range(1, n + 1))
    assert sum(i.principal for i in items) == principal
    assert all(i.payment == i.principal + i.interest and i.principal >= 0 and i.interest >= 0 for i in items)
    level = monthly_payment(principal, Decimal(rate), n)
    assert {i.payment for i in items[:-1]} <= {level}  # level payments; only the last differs


def test_rates_are_decimal_strings_from_zero_to_one():
    assert parse_rate("0.0799") == 79_900 and format_rate(79_900) == "0.0799"
    assert parse_rate("0") == 0 and parse_rate("1") == 1_000_000 and format_rate(1_000_000) == "1"
    for bad in ("0.07999999", "1.5", "-0.1", "7.99", ".5", "0.05\n", "1e-2", 0.05, None):
        with pytest.raises(ValidationFailed):
            parse_rate(bad)
