"""Why the worker refuses a posting, decided on plain in-memory rows (no database)."""

from __future__ import annotations

import pytest

from core.models import Account, Transfer
from core.transfers.posting import _refusal


def account(*, balance: int = 0, status: str = "active", kind: str = "customer", name: str = "acc") -> Account:
    return Account(
        id=name,
        number=f"NL00BANK{name}",
        currency="EUR",
        type="cash" if kind == "internal" else "checking",
        kind=kind,
        status=status,
        balance=balance,
    )


def transfer(amount: int, source: Account, destination: Account) -> Transfer:
    return Transfer(
        id="t1",
        job_id="j1",
        kind="transfer",
        source_account_id=source.id,
        destination_account_id=destination.id,
        amount=amount,
        currency="EUR",
        status="pending",
        requested_by="u1",
    )


def refusal(amount: int, source: Account, destination: Account) -> tuple[str, str] | None:
    return _refusal(transfer(amount, source, destination), source, destination)


def test_funded_transfer_between_active_accounts_is_allowed() -> None:
    assert refusal(100, account(balance=500, name="src"), account(name="dst")) is None


def test_exact_balance_is_allowed() -> None:
    assert refusal(500, account(balance=500, name="src"), account(name="dst")) is None


def test_insufficient_funds() -> None:
    code, message = refusal(501, account(balance=500, name="src"), account(name="dst")) or ("", "")
    assert code == "insufficient_funds"
    assert "source" in message


def test_empty_customer_account_cannot_send_a_cent() -> None:
    assert refusal(1, account(balance=0, name="src"), account(name="dst")) == (
        "insufficient_funds",
        "The source account does not have enough money.",
    )


def test_internal_cash_account_may_go_negative() -> None:
    cash = account(balance=0, kind="internal", name="cash")
    assert refusal(1_000_000, cash, account(name="dst")) is None
    assert refusal(1, account(balance=-5_000, kind="internal", name="cash2"), account(name="dst")) is None


def test_withdrawal_to_cash_still_needs_customer_funds() -> None:
    cash = account(kind="internal", name="cash")
    assert refusal(100, account(balance=99, name="src"), cash) is not None
    assert refusal(100, account(balance=100, name="src"), cash) is None


@pytest.mark.parametrize("side", ["source", "destination"])
def test_frozen_account(side: str) -> None:
    source = account(balance=500, status="frozen" if side == "source" else "active", name="src")
    destination = account(status="frozen" if side == "destination" else "active", name="dst")
    code, message = refusal(100, source, destination) or ("", "")
    assert code == "account_frozen"
    assert side in message


@pytest.mark.parametrize("side", ["source", "destination"])
def test_closed_account(side: str) -> None:
    source = account(balance=500, status="closed" if side == "source" else "active", name="src")
    destination = account(status="closed" if side == "destination" else "active", name="dst")
    code, message = refusal(100, source, destination) or ("", "")
    assert code == "account_closed"
    assert side in message


def test_frozen_internal_account_is_refused_too() -> None:
    cash = account(kind="internal", status="frozen", name="cash")
    assert (refusal(100, cash, account(name="dst")) or ("",))[0] == "account_frozen"


def test_account_state_is_checked_before_funds() -> None:
    assert (refusal(100, account(balance=0, status="frozen", name="src"), account(name="dst")) or ("",))[0] == (
        "account_frozen"
    )
    assert (refusal(100, account(balance=0, name="src"), account(status="closed", name="dst")) or ("",))[0] == (
        "account_closed"
    )


def test_refusal_does_not_touch_balances() -> None:
    source, destination = account(balance=50, name="src"), account(balance=7, name="dst")
    refusal(100, source, destination)
    refusal(10, source, destination)
    assert (source.balance, destination.balance) == (50, 7)
