"""The ledger check: every balance equals the sum of its entries, every currency sums to zero."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from core.db import Database
from core.models import Account, Entry
from core.money import format_minor


def check_ledger(db: Database) -> dict[str, Any]:
    with db.transaction() as s:
        sums = dict(s.execute(select(Entry.account_id, func.sum(Entry.amount)).group_by(Entry.account_id)).all())
        accounts = s.execute(select(Account.id, Account.number, Account.currency, Account.balance, Account.kind)).all()
        per_currency = s.execute(select(Entry.currency, func.sum(Entry.amount)).group_by(Entry.currency)).all()
        unbalanced = s.execute(
            select(Entry.transfer_id, func.sum(Entry.amount))
            .group_by(Entry.transfer_id)
            .having(func.sum(Entry.amount) != 0)
        ).all()
    mismatches: list[dict[str, Any]] = []
    for account_id, number, currency, balance, kind in accounts:
        total = int(sums.get(account_id) or 0)
        if total != balance:
            mismatches.append(
                {
                    "type": "balance_mismatch",
                    "account_id": account_id,
                    "number": number,
                    "balance": format_minor(balance, currency),
                    "entries_sum": format_minor(total, currency),
                }
            )
        if kind == "customer" and balance < 0:
            mismatches.append(
                {
                    "type": "negative_balance",
                    "account_id": account_id,
                    "number": number,
                    "balance": format_minor(balance, currency),
                }
            )
    for currency, total in per_currency:
        if int(total or 0) != 0:
            mismatches.append(
                {"type": "currency_not_balanced", "currency": currency, "sum": format_minor(int(total), currency)}
            )
    for transfer_id, total in unbalanced:
        mismatches.append({"type": "posting_not_balanced", "transfer_id": transfer_id, "sum": int(total)})
    return {"ok": not mismatches, "accounts_checked": len(accounts), "mismatches": mismatches}
