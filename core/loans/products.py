"""Loan products: what the bank lends, created by admins and listed to anyone signed in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from core import audit
from core.bank import Bank
from core.clock import isoformat, utcnow
from core.errors import Forbidden, ValidationFailed
from core.models import LoanProduct, User
from core.money import CURRENCIES, check_currency, format_minor, parse_amount
from core.pagination import newest_first

MAX_TERM_MONTHS = 480
# A yearly rate as a fraction: 0 to 1 with at most six decimals ("0.0799" is 7.99 %).
_RATE = re.compile(r"(0(\.[0-9]{1,6})?|1(\.0{1,6})?)")
_ZERO = re.compile(r"0(\.0+)?")


@dataclass(frozen=True)
class NewLoanProduct:
    name: str
    currency: str
    annual_rate: str
    min_amount: str
    max_amount: str
    min_term_months: int
    max_term_months: int
    late_fee: str


def format_rate(ppm: int) -> str:
    """79900 -> "0.0799": the shortest decimal string of the rate, as it was given."""
    text = f"{Decimal(ppm) / Decimal(1_000_000):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_rate(raw: object) -> int:
    if not isinstance(raw, str) or not _RATE.fullmatch(raw):
        raise ValidationFailed(
            "Invalid annual rate.",
            errors={"annual_rate": ['A decimal string from "0" to "1" with at most 6 decimals, e.g. "0.0799".']},
        )
    return int(Decimal(raw) * 1_000_000)


def _fee(raw: object, currency: str) -> int:
    if isinstance(raw, str) and _ZERO.fullmatch(raw) and len(raw) <= CURRENCIES[currency] + 2:
        return 0
    return parse_amount(raw, currency, "late_fee")


def _term(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TERM_MONTHS:
        raise ValidationFailed("Invalid term.", errors={field: [f"Whole months from 1 to {MAX_TERM_MONTHS}."]})
    return value


def product_view(p: LoanProduct) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "currency": p.currency,
        "annual_rate": format_rate(p.annual_rate_ppm),
        "min_amount": format_minor(p.min_amount, p.currency),
        "max_amount": format_minor(p.max_amount, p.currency),
        "min_term_months": p.min_term_months,
        "max_term_months": p.max_term_months,
        "late_fee": format_minor(p.late_fee, p.currency),
        "created_at": isoformat(p.created_at),
    }


def create_product(bank: Bank, user: User, cmd: NewLoanProduct) -> dict[str, Any]:
    if user.role != "admin":
        raise Forbidden("Only admins define loan products.", code="forbidden")
    name = cmd.name.strip() if isinstance(cmd.name, str) else ""
    if not name or len(name) > 100:
        raise ValidationFailed("Invalid name.", errors={"name": ["Give 1 to 100 characters."]})
    currency = check_currency(cmd.currency)
    rate = parse_rate(cmd.annual_rate)
    low = parse_amount(cmd.min_amount, currency, "min_amount")
    high = parse_amount(cmd.max_amount, currency, "max_amount")
    if low > high:
        raise ValidationFailed("Invalid amounts.", errors={"max_amount": ["Must not be below min_amount."]})
    shortest, longest = _term(cmd.min_term_months, "min_term_months"), _term(cmd.max_term_months, "max_term_months")
    if shortest > longest:
        raise ValidationFailed("Invalid terms.", errors={"max_term_months": ["Must not be below min_term_months."]})
    fee = _fee(cmd.late_fee, currency)
    with bank.db.transaction() as s:
        product = LoanProduct(
            name=name,
            currency=currency,
            annual_rate_ppm=rate,
            min_amount=low,
            max_amount=high,
            min_term_months=shortest,
            max_term_months=longest,
            late_fee=fee,
            created_by=user.id,
            created_at=utcnow(),
        )
        s.add(product)
        s.flush()
        audit.record(
            s, user.id, "loan_product.created", f"loan_product:{product.id}", currency=currency, rate=cmd.annual_rate
        )
        return product_view(product)


def list_products(bank: Bank, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    with bank.db.transaction() as s:
        rows, next_cursor = newest_first(s, select(LoanProduct), LoanProduct, limit=limit, cursor=cursor)
        return {"items": [product_view(p) for p in rows], "next_cursor": next_cursor}
