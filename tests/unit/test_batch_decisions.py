"""How a batch's items are decided in order against the balances the earlier ones left (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from core.transfers.batch_posting import Item, decide
from core.transfers.posting import _Balance

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def item(index: int, source: str, destination: str, amount: int, status: str = "pending") -> Item:
    return Item(f"t{index}", index, status, source, destination, amount, "EUR", None)


def test_items_see_the_balances_earlier_items_left():
    accounts = {"a": _Balance("active", "customer", 100), "b": _Balance("active", "customer", 0)}
    items = [item(0, "a", "b", 60), item(1, "a", "b", 50), item(2, "b", "a", 60), item(3, "a", "b", 90)]
    outcomes, entries = decide(items, accounts, NOW)
    assert [o and o[0] for o in outcomes] == [None, "insufficient_funds", None, None]
    assert [(e["transfer_id"], e["amount"], e["balance_after"]) for e in entries] == [
        ("t0", -60, 40), ("t0", 60, 60), ("t2", -60, 0), ("t2", 60, 100), ("t3", -90, 10), ("t3", 90, 90),
    ]
    assert (accounts["a"].balance, accounts["b"].balance) == (10, 90)


def test_frozen_accounts_and_items_no_longer_pending_are_refused():
    accounts = {"a": _Balance("active", "customer", 100), "f": _Balance("frozen", "customer", 0),
                "b": _Balance("active", "customer", 0)}
    outcomes, entries = decide([item(0, "a", "f", 1), item(1, "a", "b", 1, status="posted")], accounts, NOW)
    assert [o and o[0] for o in outcomes] == ["account_frozen", "invalid_state"]
    assert entries == [] and accounts["a"].balance == 100


def test_items_charge_the_senders_limit_in_order():
    from core.limits import Usage

    accounts = {"a": _Balance("active", "customer", 1000, "alice"), "b": _Balance("active", "customer", 0, "bob")}
    usage = {("alice", "EUR"): Usage("EUR", daily_limit=100, monthly_limit=150, day_used=30, month_used=80)}
    items = [item(0, "a", "b", 60), item(1, "a", "b", 20), item(2, "a", "b", 10), item(3, "b", "a", 50)]
    outcomes, _ = decide(items, accounts, NOW, usage)
    assert [o and o[0] for o in outcomes] == [None, "limit_exceeded", None, None]
    assert outcomes[1] and "0.10 EUR today, 0.10 EUR this month" in outcomes[1][1]
    assert (usage[("alice", "EUR")].day_used, usage[("alice", "EUR")].month_used) == (100, 150)
