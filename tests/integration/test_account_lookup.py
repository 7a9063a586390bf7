"""load_accounts, the accept path's one read of a request's accounts, on PostgreSQL (array parameters) and on the
embedded SQLite database (an expanding IN): by id, by number, both, none found; the detached instances it
returns carry every column as the ORM loads them, with no pending change; and a transfer's accept reads them in
the statement that looks up its key (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, func, inspect, select

from core.accounts import load_accounts
from core.bank import Bank
from core.errors import NotFound
from core.idempotency import Accepted
from core.models import Account, Job, Transfer
from core.settings import Settings
from core.setup import prepare
from core.transfers import TransferRequest, request_transfer
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


def _statements_of(bank: Bank, run: Callable[[], object]) -> list[str]:
    seen: list[str] = []

    def note(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    event.listen(bank.db.engine, "before_cursor_execute", note)
    try:
        run()
    finally:
        event.remove(bank.db.engine, "before_cursor_execute", note)
    return seen


@pytest.mark.parametrize("by_number", [False, True])
def test_a_transfer_is_accepted_in_two_statements_its_accounts_read_with_the_key(any_bank: Bank,
                                                                                 by_number: bool) -> None:
    """On PostgreSQL the key's lock and look-up and the accounts are one statement, the writes another; SQLite
    reads the accounts on their own (a local file: no round trip to save)."""
    payer, payee = make_user(any_bank), make_user(any_bank)
    source, destination = open_account(any_bank, payer, "EUR", 500), open_account(any_bank, payee, "EUR", 0)
    number = any_bank.db.get(Account, destination).number  # type: ignore[union-attr]
    body = {"source_account_id": source, "amount": "1.00", "currency": "EUR",
            **({"destination_account_number": number} if by_number else {"destination_account_id": destination})}
    cmd = TransferRequest(**body)  # type: ignore[arg-type]
    accepted: list[Accepted] = []
    statements = _statements_of(any_bank, lambda: accepted.append(request_transfer(
        any_bank, payer, cmd, idempotency_key="k-1", body=body)))
    assert accepted[0].status == 202 and not accepted[0].replayed
    writes = [s for s in statements if s.startswith(("WITH", "INSERT"))]
    reads = [s for s in statements if s.startswith("SELECT")]
    if any_bank.db.is_postgres:
        assert len(statements) == 2 and len(writes) == 1, statements
        assert "pg_try_advisory_xact_lock" in reads[0] and "FROM accounts" in reads[0]
    else:
        assert [("idempotency_keys" in s, "FROM accounts" in s) for s in reads] == [(True, False), (False, True)]
    with any_bank.db.transaction() as s:
        job = s.get(Job, accepted[0].body["id"])
        transfer = s.scalar(select(Transfer).where(Transfer.job_id == job.id))  # type: ignore[union-attr]
        assert (transfer.source_account_id, transfer.destination_account_id) == (source, destination)  # type: ignore[union-attr]

    # A replay reads the key and answers as before, whatever the accounts read beside it.
    again = request_transfer(any_bank, payer, cmd, idempotency_key="k-1", body=body)
    assert again.replayed and again.body == accepted[0].body


def test_accounts_that_do_not_exist_are_refused_though_read_with_the_key(any_bank: Bank) -> None:
    payer = make_user(any_bank)
    source = open_account(any_bank, payer, "EUR", 500)
    body = {"source_account_id": source, "destination_account_id": "0" * 36, "amount": "1.00", "currency": "EUR"}
    with pytest.raises(NotFound):
        request_transfer(any_bank, payer, TransferRequest(**body), idempotency_key="k-2", body=body)  # type: ignore[arg-type]
    nobody = {**body, "source_account_id": "1" * 36}
    with pytest.raises(NotFound):
        request_transfer(any_bank, payer, TransferRequest(**nobody), idempotency_key="k-3", body=nobody)  # type: ignore[arg-type]
    with any_bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.user_id == payer.id)) == 0
