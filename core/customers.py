"""Customers as staff see them: search, profile with accounts, profile edits, walk-in registration, status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit
from core.accounts import account_view
from core.db import Database
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Account, Loan, User
from core.pagination import check_limit, decode_cursor, encode_cursor
from core.time_zones import check_time_zone
from core.users import NewUser, check_birth_date, insert_user, user_view

STATUSES = ("active", "suspended", "closed")
OPEN_LOAN_STATUSES = ("applied", "approved", "active", "overdue")  # a customer with one of these cannot be closed
EDITABLE = ("full_name", "email", "phone", "date_of_birth", "time_zone")


@dataclass(frozen=True)
class WalkIn:
    username: str
    email: str
    full_name: str
    date_of_birth: date | None = None
    phone: str | None = None


def _customer(s: Session, customer_id: str, *, lock: bool = False) -> User:
    user = s.get(User, customer_id, with_for_update=lock)
    if user is None or user.role != "customer":
        raise NotFound("No such customer.")
    return user


def _accounts(s: Session, customer_id: str, *, lock: bool = False) -> list[Account]:
    query = select(Account).where(Account.owner_id == customer_id).order_by(Account.created_at, Account.id)
    return list(s.scalars(query.with_for_update() if lock else query))


def _profile(s: Session, user: User) -> dict[str, Any]:
    return {**user_view(user), "accounts": [account_view(a) for a in _accounts(s, user.id)]}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(db: Database, q: str | None, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """Customers whose name, email, phone or username contains q (any case), or who own the account numbered q;
    ordered by username."""
    limit = check_limit(limit)
    after = decode_cursor(cursor, 1)
    if after is not None and not isinstance(after[0], str):
        decode_cursor("!", 1)
    query = select(User).where(User.role == "customer")
    term = (q or "").strip()
    if term:
        pattern = _like(term)
        number = "".join(term.split()).upper()
        query = query.where(
            or_(
                User.full_name.ilike(pattern, escape="\\"),
                User.email.ilike(pattern, escape="\\"),
                User.phone.ilike(pattern, escape="\\"),
                User.username.ilike(pattern, escape="\\"),
                exists().where(Account.owner_id == User.id, Account.number == number),
            )
        )
    if after:
        query = query.where(User.username > after[0])
    with db.transaction() as s:
        rows = list(s.scalars(query.order_by(User.username).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "items": [user_view(u) for u in rows],
            "next_cursor": encode_cursor(rows[-1].username) if more else None,
        }


def get_customer(db: Database, customer_id: str) -> dict[str, Any]:
    with db.transaction() as s:
        return _profile(s, _customer(s, customer_id))


def update_customer(db: Database, actor_id: str, customer_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Staff edit a customer's profile: any of EDITABLE, checked as at registration."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValidationFailed("Not a profile field.", errors={name: ["Unknown field."] for name in unknown})
    if "full_name" in changes and not (isinstance(changes["full_name"], str) and changes["full_name"].strip()):
        raise ValidationFailed("Invalid name.", errors={"full_name": ["Must not be blank."]})
    if "email" in changes and not (isinstance(changes["email"], str) and changes["email"].strip()):
        raise ValidationFailed("Invalid email.", errors={"email": ["Must not be blank."]})
    if "time_zone" in changes:
        check_time_zone(changes["time_zone"])
    if "date_of_birth" in changes:
        check_birth_date(changes["date_of_birth"])
    try:
        with db.transaction() as s:
            user = _customer(s, customer_id, lock=True)
            if "email" in changes:
                email = changes["email"].strip().lower()
                if email != user.email and s.scalar(select(User.id).where(User.email == email)):
                    raise Conflict("That email address is already registered.", code="email_taken")
                user.email = email
            if "full_name" in changes:
                user.full_name = changes["full_name"].strip()
            for name in ("phone", "date_of_birth", "time_zone"):
                if name in changes:
                    setattr(user, name, changes[name])
            if changes:
                audit.record(s, actor_id, "customer.updated", f"user:{user.id}", fields=sorted(changes))
                s.flush()
            return _profile(s, user)
    except IntegrityError as exc:  # a concurrent registration took the address
        raise Conflict("That email address is already registered.", code="email_taken") from exc


def register_walk_in(db: Database, actor_id: str, new: WalkIn) -> dict[str, Any]:
    """A customer registered at the counter, without a password: they set one through the password-reset flow
    (a NULL password_hash never verifies, so nobody can log in until then)."""
    try:
        with db.transaction() as s:
            user = insert_user(
                s,
                NewUser(
                    username=new.username,
                    email=new.email,
                    password=None,
                    full_name=new.full_name,
                    date_of_birth=new.date_of_birth,
                    phone=new.phone,
                    role="customer",
                ),
            )
            audit.record(s, actor_id, "customer.registered", f"user:{user.id}", walk_in=True)
            s.flush()
            return user_view(user)
    except IntegrityError as exc:
        raise Conflict("That username or email is already registered.", code="username_taken") from exc


def set_status(db: Database, actor_id: str, customer_id: str, status: str) -> dict[str, Any]:
    """active, suspended (every token stops working; no login, no payments) or closed (every account must be
    empty; they are closed too)."""
    if status not in STATUSES:
        raise ValidationFailed("Unknown status.", errors={"status": [f"Must be one of {', '.join(STATUSES)}."]})
    with db.transaction() as s:
        user = _customer(s, customer_id, lock=True)
        previous = user.status
        if status == previous:
            return _profile(s, user)
        if previous == "closed":
            raise Conflict("A closed customer cannot be reopened.", code="customer_closed")
        if status == "closed":
            open_loans = s.scalar(select(func.count()).select_from(Loan)
                                  .where(Loan.user_id == user.id, Loan.status.in_(OPEN_LOAN_STATUSES)))
            if open_loans:
                raise Conflict("The customer has a loan that is not repaid or rejected: settle it first.",
                               code="loan_open", extra={"open_loans": open_loans})
            accounts = _accounts(s, user.id, lock=True)
            if any(a.balance != 0 for a in accounts):
                raise Conflict("Every account must have a zero balance first.", code="balance_not_zero")
            for account in accounts:
                account.status = "closed"
        if status != "active":
            user.token_version += 1
        user.status = status
        audit.record(s, actor_id, "customer.status_changed", f"user:{user.id}", previous=previous, status=status)
        s.flush()
        return _profile(s, user)
