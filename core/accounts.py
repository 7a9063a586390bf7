"""Accounts: opening, visibility, statements, freezing, and the bank's own cash accounts."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, any_, bindparam, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from core import audit
from core.clock import isoformat
from core.db import Database, columns_of, detached
from core.errors import Forbidden, NotFound, ValidationFailed
from core.idempotency import ReadAlongside, read_alongside
from core.models import Account, Entry, User
from core.money import CURRENCIES, check_currency, format_minor
from core.pagination import check_limit, decode_cursor, encode_cursor
from core.users import is_staff

ACCOUNT_TYPES = ("checking", "savings")
ENTRY_ID_MAX = 2**63 - 1  # above every entry id (a bigint): the first page of a statement


def cash_account_number(currency: str) -> str:
    return f"BANKQ-CASH-{currency}"


def loan_charges_account_number(currency: str) -> str:
    return f"BANKQ-LOAN-CHARGES-{currency}"


def interest_account_number(currency: str) -> str:
    return f"BANKQ-INTEREST-{currency}"


def fees_account_number(currency: str) -> str:
    return f"BANKQ-FEES-{currency}"


BANK_ACCOUNTS = (
    (cash_account_number, "cash"),
    (loan_charges_account_number, "receivable"),
    (interest_account_number, "interest"),
    (fees_account_number, "fees"),
)


def account_view(account: Account) -> dict[str, Any]:
    balance = format_minor(account.balance, account.currency)
    return {
        "id": account.id,
        "number": account.number,
        "owner_id": account.owner_id,
        "currency": account.currency,
        "type": account.type,
        "status": account.status,
        "balance": balance,
        "available_balance": balance,
        "created_at": isoformat(account.created_at),
    }


def entry_view(entry: Entry) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "transfer_id": entry.transfer_id,
        "amount": format_minor(entry.amount, entry.currency),
        "balance_after": format_minor(entry.balance_after, entry.currency),
        "currency": entry.currency,
        "description": entry.description,
        "posted_at": isoformat(entry.posted_at),
    }


def _luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def new_account_number() -> str:
    body = "".join(secrets.choice("0123456789") for _ in range(10))
    return body + _luhn_digit(body)


def ensure_cash_accounts(db: Database) -> None:
    """The bank's own accounts, one of each per currency: cash (the other side of every deposit and withdrawal);
    loan charges (a receivable, so negative: minus the interest accrued and late fees charged on loans and not yet
    paid; each loan's principal is on an account of its own, core.loans.books); interest and fees (the income that
    accrues on loans and the late fees charged)."""
    with db.transaction() as s:
        existing = set(s.scalars(select(Account.number).where(Account.kind == "internal")))
        for currency in CURRENCIES:
            for number_of, type_ in BANK_ACCOUNTS:
                if number_of(currency) not in existing:
                    s.add(Account(number=number_of(currency), currency=currency, type=type_, kind="internal",
                                  owner_id=None))


def cash_account(session: Session, currency: str) -> Account:
    account = session.scalar(select(Account).where(Account.number == cash_account_number(currency)))
    if account is None:
        raise NotFound(f"No cash account for {currency}; run the set-up.")
    return account


def bank_account(session: Session, number: str) -> Account:
    """One of the bank's own accounts (BANK_ACCOUNTS) by number."""
    account = session.scalar(select(Account).where(Account.number == number))
    if account is None:
        raise NotFound(f"No bank account {number}; run the set-up.")
    return account


def visible_account(session: Session, user: User, account_id: str) -> Account:
    """The account if this user may see it; otherwise 404, never revealing that it exists."""
    account = session.get(Account, account_id) if isinstance(account_id, str) and len(account_id) <= 36 else None
    return _visible(account, user)


def visible_among(accounts: dict[str, Account], user: User, account_id: str) -> Account:
    """visible_account, from accounts already loaded with load_accounts (by id: a number is not an id)."""
    account = accounts.get(account_id) if isinstance(account_id, str) else None
    return _visible(account if account is not None and account.id == account_id else None, user)


def _visible(account: Account | None, user: User) -> Account:
    if account is None or account.kind != "customer" or not (is_staff(user) or account.owner_id == user.id):
        raise NotFound("No such account.", code="account_not_found")
    return account


# A request's accounts by ids or numbers, each statement built and compiled once. PostgreSQL takes the lists as two
# array parameters; an expanding IN (what SQLite has) renders its SQL again on every execution.
_BY_IDS_OR_NUMBERS = {
    "postgresql": select(*columns_of(Account)).where(
        (Account.id == any_(bindparam("ids", type_=ARRAY(String))))
        | (Account.number == any_(bindparam("numbers", type_=ARRAY(String))))
    ),
    "sqlite": select(*columns_of(Account)).where(
        Account.id.in_(bindparam("ids", expanding=True)) | Account.number.in_(bindparam("numbers", expanding=True))
    ),
}


def _asked(ids: Iterable[str | None], numbers: Iterable[str | None]) -> tuple[list[str], list[str]]:
    """The ids and numbers worth asking for (the columns' lengths: a longer value matches nothing), sorted."""
    return (sorted({a for a in ids if isinstance(a, str) and 0 < len(a) <= 36}),
            sorted({n for n in numbers if isinstance(n, str) and 0 < len(n) <= 34}))


def load_accounts(session: Session, ids: Iterable[str | None], numbers: Iterable[str | None]) -> dict[str, Account]:
    """The accounts with these ids or numbers, in one Core SELECT, keyed by id and by number (they never collide),
    as detached instances for the checks to read: a request's accounts without the ORM's loading cost. When the
    accept read them already (`accounts_alongside`), those are used."""
    ids, numbers = _asked(ids, numbers)
    if not ids and not numbers:
        return {}
    read = read_alongside(session, _BY_IDS_OR_NUMBERS["postgresql"], {"ids": ids, "numbers": numbers})
    if read is not None:
        return _keyed(read)
    connection = session.connection()
    rows = connection.execute(_BY_IDS_OR_NUMBERS[connection.dialect.name], {"ids": ids, "numbers": numbers})
    return _keyed(rows)


def _keyed(rows: Iterable[Any]) -> dict[str, Account]:
    found: dict[str, Account] = {}
    for row in rows:
        account = detached(Account, row)
        found[account.id] = found[account.number] = account
    return found


def accounts_alongside(ids: Iterable[str | None], numbers: Iterable[str | None]) -> ReadAlongside:
    """load_accounts(session, ids, numbers), read by the accept in the statement that looks up its key (PostgreSQL;
    elsewhere load_accounts reads them itself)."""
    asked_ids, asked_numbers = _asked(ids, numbers)
    return ReadAlongside(_BY_IDS_OR_NUMBERS["postgresql"], {"ids": asked_ids, "numbers": asked_numbers})


def open_account(db: Database, user: User, currency: str, type_: str, owner_id: str | None = None) -> dict[str, Any]:
    check_currency(currency)
    if type_ not in ACCOUNT_TYPES:
        raise ValidationFailed("Unknown account type.", errors={"type": ["Must be checking or savings."]})
    with db.transaction() as s:
        if owner_id and owner_id != user.id:
            if not is_staff(user):
                raise Forbidden("Only staff may open accounts for someone else.", code="forbidden")
            owner = s.get(User, owner_id)
            if owner is None or owner.role != "customer":
                raise NotFound("No such customer.", code="customer_not_found")
        elif is_staff(user):
            raise ValidationFailed("Staff open accounts for customers.", errors={"owner_id": ["Required for staff."]})
        owner_id = owner_id or user.id
        number = new_account_number()
        while s.scalar(select(Account.id).where(Account.number == number)):
            number = new_account_number()
        account = Account(number=number, owner_id=owner_id, currency=currency, type=type_, kind="customer")
        s.add(account)
        s.flush()
        audit.record(s, user.id, "account.opened", f"account:{account.id}", owner_id=owner_id, currency=currency)
        return account_view(account)


def list_accounts(
    db: Database, user: User, *, owner_id: str | None, limit: int | None, cursor: str | None
) -> dict[str, Any]:
    limit = check_limit(limit)
    after = decode_cursor(cursor, 2)
    query = select(Account).where(Account.kind == "customer")
    if not is_staff(user):
        query = query.where(Account.owner_id == user.id)
    elif owner_id:
        query = query.where(Account.owner_id == owner_id)
    if after:
        query = query.where((Account.number > after[0]) | ((Account.number == after[0]) & (Account.id > after[1])))
    with db.transaction() as s:
        rows = list(s.scalars(query.order_by(Account.number, Account.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [account_view(a) for a in rows],
        "next_cursor": encode_cursor(rows[-1].number, rows[-1].id) if more else None,
    }


def get_account(db: Database, user: User, account_id: str) -> dict[str, Any]:
    with db.transaction() as s:
        return account_view(visible_account(s, user, account_id))


def statement(db: Database, user: User, account_id: str, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    limit = check_limit(limit)
    after = decode_cursor(cursor, 1)
    with db.transaction() as s:
        account = visible_account(s, user, account_id)
        if after and not isinstance(after[0], int):
            decode_cursor("!", 1)
        before = after[0] if after else ENTRY_ID_MAX
        # In the order only ix_entries_account_id_id gives, (account_id, id), and with the account as a range, not an
        # equality: an equality would let PostgreSQL drop account_id from the order and walk the primary key down
        # from the newest entry of the whole ledger, filtering, which for an account whose entries are all old (a
        # dormant account) reads millions of rows for one page. No other index yields this order without a sort.
        query = select(Entry).where(Entry.account_id >= account.id,
                                    tuple_(Entry.account_id, Entry.id) < tuple_(account.id, before))
        rows = list(s.scalars(query.order_by(Entry.account_id.desc(), Entry.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [entry_view(e) for e in rows], "next_cursor": encode_cursor(rows[-1].id) if more else None}


def set_frozen(db: Database, user: User, account_id: str, frozen: bool) -> dict[str, Any]:
    if not is_staff(user):
        raise NotFound("No such account.", code="account_not_found")
    with db.transaction() as s:
        account = visible_account(s, user, account_id)
        s.refresh(account, with_for_update=True)
        if account.status == "closed":
            raise ValidationFailed("The account is closed.", code="account_closed")
        account.status = "frozen" if frozen else "active"
        audit.record(s, user.id, "account.frozen" if frozen else "account.unfrozen", f"account:{account.id}")
        return account_view(account)
