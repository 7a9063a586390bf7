"""The database guards the ledger by itself: hand-written SQL cannot corrupt money silently."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.ledger import check_ledger
from tests.support import make_user, open_account


def _transfer_row(s, source, destination, amount=100):
    user_id = s.execute(text("SELECT id FROM users LIMIT 1")).scalar()
    s.execute(
        text(
            "INSERT INTO transfers (id, job_id, kind, source_account_id, destination_account_id, amount, currency, "
            "status, requested_by, created_at) VALUES ('t-guard', 'j-guard', 'transfer', :s, :d, :a, 'EUR', 'pending', "
            ":u, now())"
        ),
        {"s": source, "d": destination, "a": amount, "u": user_id},
    )


def _entry(s, account, amount, currency="EUR"):
    s.execute(
        text(
            "INSERT INTO entries (transfer_id, account_id, currency, amount, balance_after, posted_at) "
            "VALUES ('t-guard', :a, :c, :m, 0, now())"
        ),
        {"a": account, "c": currency, "m": amount},
    )


@pytest.fixture
def two_accounts(bank):
    owner = make_user(bank)
    return open_account(bank, owner, "EUR", 10_00), open_account(bank, owner, "EUR")


def test_unbalanced_posting_is_refused_at_commit(bank, two_accounts):
    source, destination = two_accounts
    with pytest.raises(DBAPIError, match="not balanced"), bank.db.transaction() as s:
        _transfer_row(s, source, destination)
        _entry(s, source, -100)
        _entry(s, destination, 99)


def test_balanced_posting_written_line_by_line_is_accepted(bank, two_accounts):
    source, destination = two_accounts
    with bank.db.transaction() as s:
        _transfer_row(s, source, destination)
        _entry(s, source, -100)
        _entry(s, destination, 100)


def test_entries_are_immutable(bank, two_accounts):
    with pytest.raises(DBAPIError, match="immutable"), bank.db.transaction() as s:
        s.execute(text("UPDATE entries SET amount = amount * 2"))
    with pytest.raises(DBAPIError, match="immutable"), bank.db.transaction() as s:
        s.execute(text("DELETE FROM entries"))


def test_zero_entry_and_wrong_currency_are_refused(bank, two_accounts):
    source, destination = two_accounts
    with pytest.raises(DBAPIError, match="amount_nonzero"), bank.db.transaction() as s:
        _transfer_row(s, source, destination)
        _entry(s, source, 0)
    with pytest.raises(DBAPIError, match="fk_entries_account_currency"), bank.db.transaction() as s:
        _transfer_row(s, source, destination)
        _entry(s, source, -100, "USD")
        _entry(s, destination, 100, "USD")


def test_customer_balance_cannot_go_negative(bank, two_accounts):
    source, _ = two_accounts
    with pytest.raises(DBAPIError, match="balance_not_negative"), bank.db.transaction() as s:
        s.execute(text("UPDATE accounts SET balance = -1 WHERE id = :id"), {"id": source})


def test_ledger_check_reports_a_tampered_balance(bank, two_accounts):
    source, _ = two_accounts
    assert check_ledger(bank.db)["ok"]
    with bank.db.transaction() as s:
        s.execute(text("UPDATE accounts SET balance = balance + 1 WHERE id = :id"), {"id": source})
    report = check_ledger(bank.db)
    assert not report["ok"]
    assert [m["account_id"] for m in report["mismatches"] if m["type"] == "balance_mismatch"] == [source]
