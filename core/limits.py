"""Outgoing transfer limits per customer and currency: daily (UTC day) and monthly (calendar month in UTC).

Each (customer, currency) has one row holding the limits staff set (NULL: the bank's default from the settings,
itself possibly none) and the running outgoing usage of the current day and month. Posting locks the rows of the
customers it moves money for, after the accounts and in key order, so concurrent postings from any of a customer's
accounts are serialised on that row and no two can both spend the last of an allowance. Only customers' own
transfers count: deposits, withdrawals and reversals are the bank's acts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from core.db import Database
from core.errors import NotFound, ValidationFailed
from core.models import Account, CustomerLimit, User
from core.money import CURRENCIES, check_currency, format_minor, parse_amount
from core.settings import Settings

LIMITS = cast(Table, CustomerLimit.__table__)
UsageKey = tuple[str, str]  # (customer id, currency)


@dataclass(frozen=True)
class DefaultLimits:
    """The bank's limits in major units, applying to every currency; None: no limit."""

    daily: Decimal | None = None
    monthly: Decimal | None = None

    @classmethod
    def of(cls, settings: Settings) -> DefaultLimits:
        return cls(settings.daily_limit, settings.monthly_limit)

    def minor(self, amount: Decimal | None, currency: str) -> int | None:
        if amount is None:
            return None
        return int((amount * 10 ** CURRENCIES[currency]).to_integral_value(ROUND_FLOOR))


NO_DEFAULT_LIMITS = DefaultLimits()


@dataclass
class Usage:
    """One (customer, currency) row during a posting: the effective limits and what the day and month used."""

    currency: str
    daily_limit: int | None
    monthly_limit: int | None
    day_used: int
    month_used: int
    changed: bool = False

    def remaining(self) -> tuple[int | None, int | None]:
        daily = None if self.daily_limit is None else max(0, self.daily_limit - self.day_used)
        monthly = None if self.monthly_limit is None else max(0, self.monthly_limit - self.month_used)
        return daily, monthly

    def refusal(self, amount: int) -> tuple[str, str] | None:
        daily, monthly = self.remaining()
        if (daily is None or amount <= daily) and (monthly is None or amount <= monthly):
            return None

        def shown(value: int | None) -> str:
            return "no limit" if value is None else f"{format_minor(value, self.currency)} {self.currency}"

        return (
            "limit_exceeded",
            f"The transfer exceeds the remaining allowance: {shown(daily)} today, {shown(monthly)} this month.",
        )

    def charge(self, amount: int) -> None:
        self.day_used += amount
        self.month_used += amount
        self.changed = True


def _periods(now: datetime) -> tuple[date, date]:
    today = now.date()
    return today, today.replace(day=1)


def _upsert(s: Session, rows: list[dict[str, Any]], update_columns: tuple[str, ...]) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE: creates the missing rows and locks every row, in the order given."""
    dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(LIMITS).values(rows)
    return stmt.on_conflict_do_update(
        index_elements=[LIMITS.c.user_id, LIMITS.c.currency],
        set_={name: stmt.excluded[name] for name in update_columns},
    )


def lock_usage(s: Session, keys: set[UsageKey], defaults: DefaultLimits, now: datetime) -> dict[UsageKey, Usage]:
    """The usage rows of `keys`, created if missing and locked in key order (every posting path takes them after
    its accounts, in this order, so none waits on another in a cycle)."""
    if not keys:
        return {}
    today, month = _periods(now)
    rows = [
        {"user_id": u, "currency": c, "usage_day": today, "day_used": 0, "usage_month": month, "month_used": 0,
         "updated_at": now}
        for u, c in sorted(keys)
    ]
    s.execute(_upsert(s, rows, ("updated_at",)))
    found = s.execute(
        select(LIMITS).where(tuple_(LIMITS.c.user_id, LIMITS.c.currency).in_(sorted(keys)))
    )  # already locked by the upsert: a plain read of our own rows
    return {(r.user_id, r.currency): _usage(r, defaults, today, month) for r in found}


def _usage(row: Any, defaults: DefaultLimits, today: date, month: date) -> Usage:
    return Usage(
        currency=row.currency,
        daily_limit=row.daily_limit if row.daily_limit is not None else defaults.minor(defaults.daily, row.currency),
        monthly_limit=row.monthly_limit
        if row.monthly_limit is not None
        else defaults.minor(defaults.monthly, row.currency),
        day_used=row.day_used if row.usage_day == today else 0,
        month_used=row.month_used if row.usage_month == month else 0,
    )


def save_usage(s: Session, usage: dict[UsageKey, Usage], now: datetime) -> None:
    changed = [(key, u) for key, u in usage.items() if u.changed]
    if not changed:
        return
    today, month = _periods(now)
    s.execute(
        update(LIMITS)
        .where(and_(LIMITS.c.user_id == bindparam("_user"), LIMITS.c.currency == bindparam("_currency")))
        .values(
            usage_day=today,
            day_used=bindparam("_day"),
            usage_month=month,
            month_used=bindparam("_month"),
            updated_at=now,
        ),
        [
            {"_user": user, "_currency": currency, "_day": u.day_used, "_month": u.month_used}
            for (user, currency), u in changed
        ],
    )


def _limit(raw: object, currency: str, field: str) -> int | None:
    return None if raw is None else parse_amount(raw, currency, field)


def limit_view(usage: Usage) -> dict[str, Any]:
    daily, monthly = usage.remaining()

    def shown(value: int | None) -> str | None:
        return None if value is None else format_minor(value, usage.currency)

    return {
        "currency": usage.currency,
        "daily": shown(usage.daily_limit),
        "monthly": shown(usage.monthly_limit),
        "daily_remaining": shown(daily),
        "monthly_remaining": shown(monthly),
    }


def set_limits(
    db: Database, settings: Settings, actor_id: str, customer_id: str, currency: str, daily: object, monthly: object
) -> dict[str, Any]:
    """Staff set a customer's daily and monthly limits in one currency (null: back to the bank's default)."""
    check_currency(currency)
    daily_minor, monthly_minor = _limit(daily, currency, "daily"), _limit(monthly, currency, "monthly")
    if daily_minor is not None and monthly_minor is not None and daily_minor > monthly_minor:
        raise ValidationFailed("Invalid limits.", errors={"daily": ["Must not exceed the monthly limit."]})
    now = utcnow()
    today, month = _periods(now)
    with db.transaction() as s:
        customer = s.get(User, customer_id) if isinstance(customer_id, str) and len(customer_id) <= 36 else None
        if customer is None or customer.role != "customer":
            raise NotFound("No such customer.")
        row = {"user_id": customer.id, "currency": currency, "daily_limit": daily_minor,
               "monthly_limit": monthly_minor, "usage_day": today, "day_used": 0, "usage_month": month,
               "month_used": 0, "updated_at": now}
        s.execute(_upsert(s, [row], ("daily_limit", "monthly_limit", "updated_at")))
        audit.record(
            s,
            actor_id,
            "customer.limits_set",
            f"user:{customer.id}",
            currency=currency,
            daily=None if daily_minor is None else format_minor(daily_minor, currency),
            monthly=None if monthly_minor is None else format_minor(monthly_minor, currency),
        )
        saved = s.execute(select(LIMITS).where(LIMITS.c.user_id == customer.id, LIMITS.c.currency == currency)).one()
        return limit_view(_usage(saved, DefaultLimits.of(settings), today, month))


def limits_of(s: Session, settings: Settings, user: User) -> list[dict[str, Any]]:
    """A customer's limits and what remains of them, one per currency they hold an account in or have limits for
    (staff: none)."""
    if user.role != "customer":
        return []
    today, month = _periods(utcnow())
    defaults = DefaultLimits.of(settings)
    rows = {r.currency: r for r in s.execute(select(LIMITS).where(LIMITS.c.user_id == user.id))}
    held = set(s.scalars(select(Account.currency).where(Account.owner_id == user.id, Account.kind == "customer")))
    views = []
    for currency in sorted(held | set(rows)):
        row = rows.get(currency)
        if row is None:
            daily, monthly = defaults.minor(defaults.daily, currency), defaults.minor(defaults.monthly, currency)
            views.append(limit_view(Usage(currency, daily, monthly, 0, 0)))
        else:
            views.append(limit_view(_usage(row, defaults, today, month)))
    return views
