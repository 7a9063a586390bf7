"""load_accounts, the accept path's one read of a request's accounts, on PostgreSQL (array parameters) and on the
embedded SQLite database (an expanding IN): by id, by number, both, none found; and the detached instances it
returns carry every column as the ORM loads them, with no pending change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from core.accounts import load_accounts
from core.bank import Bank
from core.models import Account
from core.settings import Settings
from core.setup import prepare
from tests.support import make_user, open_account


@pytest.fixture(params=["postgresql", "sqlite"])
def any_bank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bank]:
    if request.param == "postgresql":
        yield request.getfixturevalue("bank")
        return
    embedded = Bank(Settings.from_env({"BANKQ_DATA_DIR": str(tmp_path), "BANKQ_SECRET_KEY": "k" * 64}))
    prepare(embedded)
    try:
        yield embedded
    finally:
        embedded.db.dispose()


def _two_accounts(bank: Bank) -> tuple[Account, Account]:
    owner = make_user(bank)
    ids = [open_account(bank, owner, "EUR", 500), open_account(bank, owner, "EUR", 0)]
    with bank.db.transaction() as s:
        first, second = (s.get(Account, i) for i in ids)
        assert first is not None and second is not None
        return first, second


def test_by_ids_by_numbers_and_both(any_bank: Bank) -> None:
    first, second = _two_accounts(any_bank)
    with any_bank.db.transaction() as s:
        by_ids = load_accounts(s, [first.id, second.id, None], [None])
        by_number = load_accounts(s, [], [second.number])
        mixed = load_accounts(s, [first.id], [second.number])
    assert set(by_ids) == {first.id, first.number, second.id, second.number}
    assert set(by_number) == {second.id, second.number}
    assert set(mixed) == {first.id, first.number, second.id, second.number}
    assert by_ids[first.number] is by_ids[first.id]


def test_nothing_found_and_nothing_asked(any_bank: Bank) -> None:
    _two_accounts(any_bank)
    with any_bank.db.transaction() as s:
        assert load_accounts(s, ["no-such-id"], ["NO-SUCH-NUMBER"]) == {}
        assert load_accounts(s, [None, ""], [None]) == {}
        assert load_accounts(s, ["x" * 37], ["9" * 35]) == {}  # longer than any id or number: not even asked


def test_detached_instances_are_loaded_like_the_orm_loads_them(any_bank: Bank) -> None:
    first, _ = _two_accounts(any_bank)
    with any_bank.db.transaction() as s:
        found = load_accounts(s, [first.id], [])[first.id]
    state = inspect(found)
    assert state.detached and state.key == inspect(first).key
    assert not state.unloaded and not state.modified
    columns = [attr.key for attr in inspect(Account).column_attrs]
    assert {c: getattr(found, c) for c in columns} == {c: getattr(first, c) for c in columns}
    assert found.balance == 500
