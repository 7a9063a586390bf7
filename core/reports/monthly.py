"""The monthly statement: early each month, a PDF of the previous month for every account of every active
customer who has not opted out, emailed once it is rendered.

Once per (account, month): the `monthly_statements` primary key is the guard, inserted in the same transaction as
the report and its job, so concurrent or repeated ticks make one each. The tick acts during the first
CATCH_UP_DAYS days of a month, so a beat that was down on the 1st still catches up.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError

from core.bank import Bank
from core.clock import utcnow
from core.models import Account, MonthlyStatement, User
from core.reports.statements import new_report

CATCH_UP_DAYS = 7
BATCH = 200


def previous_month(today: date) -> tuple[date, date]:
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def queue_monthly_statements(bank: Bank) -> int:
    """Queue the missing statements of last month; the number queued by this call."""
    today = utcnow().date()
    if today.day > CATCH_UP_DAYS:
        return 0
    first, last = previous_month(today)
    made = 0
    while True:
        due = _due_accounts(bank, first, last)
        queued = sum(_queue_one(bank, account_id, first, last) for account_id in due)
        made += queued
        if len(due) < BATCH or queued == 0:
            return made


def _due_accounts(bank: Bank, first: date, last: date) -> list[str]:
    month_end = datetime.combine(last + timedelta(days=1), time(), UTC)
    done = exists().where(and_(MonthlyStatement.account_id == Account.id, MonthlyStatement.month == first))
    with bank.db.transaction() as s:
        return list(
            s.scalars(
                select(Account.id)
                .join(User, User.id == Account.owner_id)
                .where(
                    Account.kind == "customer",
                    Account.status != "closed",
                    Account.created_at < month_end,
                    User.role == "customer",
                    User.status == "active",
                    User.monthly_statements.is_(True),
                    ~done,
                )
                .order_by(Account.id)
                .limit(BATCH)
            )
        )


def _queue_one(bank: Bank, account_id: str, first: date, last: date) -> int:
    try:
        with bank.db.transaction() as s:
            account = s.get(Account, account_id)
            if account is None or account.owner_id is None:
                return 0
            report, _ = new_report(
                s, account=account, user_id=account.owner_id, first=first, last=last, format="pdf", monthly=True
            )
            s.add(MonthlyStatement(account_id=account_id, month=first, report_id=report.id, created_at=utcnow()))
            s.flush()  # a concurrent tick's guard makes this one wait, then fail: that tick queued the statement
            return 1
    except IntegrityError:
        return 0
