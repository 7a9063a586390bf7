"""The annuity schedule of a loan: equal monthly payments in exact decimal arithmetic, in minor units.

payment = P·r / (1 − (1 + r)^−n) with r = annual rate / 12, rounded half up to a minor unit. Each month's interest
is the outstanding balance × r, rounded half up; the rest of the payment repays principal. The last instalment
repays whatever is left, so the principals sum exactly to P (and its payment absorbs the rounding). Due dates fall
monthly on the disbursement's day of the month, or a shorter month's last day (Jan 31 → Feb 28/29 → Mar 31)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

from core.schedule_math import add_months

PPM = Decimal(1_000_000)


@dataclass(frozen=True)
class Instalment:
    number: int
    due_date: date
    payment: int
    principal: int
    interest: int


def rate_from_ppm(ppm: int) -> Decimal:
    return Decimal(ppm) / PPM


def _minor(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def monthly_payment(principal: int, annual_rate: Decimal, term_months: int) -> int:
    with localcontext() as ctx:
        ctx.prec = 50
        r = annual_rate / 12
        if r == 0:
            return _minor(Decimal(principal) / term_months)
        return _minor(principal * r / (1 - (1 + r) ** -term_months))


def annuity_schedule(principal: int, annual_rate: Decimal, term_months: int, disbursed_on: date) -> list[Instalment]:
    """Every instalment of a loan of `principal` minor units disbursed on `disbursed_on`."""
    payment = monthly_payment(principal, annual_rate, term_months)
    items: list[Instalment] = []
    balance = principal
    with localcontext() as ctx:
        ctx.prec = 50
        r = annual_rate / 12
        for number in range(1, term_months + 1):
            interest = _minor(balance * r)
            repaid = balance if number == term_months else max(0, min(payment - interest, balance))
            balance -= repaid
            due = add_months(disbursed_on, number)
            items.append(Instalment(number, due, repaid + interest, repaid, interest))
    return items


def rescheduled(
    balance: int, annual_rate: Decimal, instalments: int, *, days_left: int, period_days: int
) -> list[tuple[int, int]]:
    """(principal, interest) of each of the remaining `instalments` after an early repayment left `balance` owed,
    the first of them `days_left` days away in a period of `period_days`. Every remaining due date asks the same
    new annuity payment (the last absorbs the rounding); the first one's interest is only what accrues on the new
    balance for the rest of its period (what accrued before was paid with the early repayment)."""
    payment = monthly_payment(balance, annual_rate, instalments)
    items: list[tuple[int, int]] = []
    with localcontext() as ctx:
        ctx.prec = 50
        r = annual_rate / 12
        for number in range(1, instalments + 1):
            if number == 1:
                interest = _minor(balance * r * days_left / period_days) if period_days > 0 else 0
            else:
                interest = _minor(balance * r)
            repaid = balance if number == instalments else max(0, min(payment - interest, balance))
            balance -= repaid
            items.append((repaid, interest))
    return items
