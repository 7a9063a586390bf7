"""Helpers shared by the integration and end-to-end tests: databases, users, money."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url

from core.bank import Bank
from core.models import Base, User
from core.security import hash_password

PASSWORD = "correct-horse-battery-staple"
_HASH = hash_password(PASSWORD)


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(server_url: str, prefix: str = "bankq_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(libpq(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_all(bank: Bank) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with bank.db.transaction() as s:
        s.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def clear_data_dir(data_dir: Path) -> None:
    """What earlier tests left in the session's data folder (KYC uploads, .eml and SMS files) goes with their rows."""
    for child in data_dir.iterdir() if data_dir.exists() else ():
        if child.is_dir():
            shutil.rmtree(child)


def make_user(
    bank: Bank, *, role: str = "customer", kyc: str = "verified", username: str | None = None, **fields: Any
) -> User:
    username = username or f"{role}_{uuid.uuid4().hex[:8]}"
    with bank.db.transaction() as s:
        user = User(
            username=username,
            email=f"{username}@example.com",
            password_hash=_HASH,
            full_name=fields.pop("full_name", username.title()),
            role=role,
            kyc_status=kyc,
            **fields,
        )
        s.add(user)
    return user


def auth_headers(client: Any, user: User, **extra: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}", **extra}


def open_account(bank: Bank, owner: User, currency: str = "EUR", balance_minor: int = 0) -> str:
    """An account funded by a real deposit posting (cash account on the other side)."""
    from core import accounts
    from core.transfers import MovementRequest, post_transfer_jobs, request_movement

    view = accounts.open_account(bank.db, _staff(bank), currency, "checking", owner.id)
    if balance_minor:
        from core.money import format_minor

        staff = _staff(bank)
        publisher, bank.db.publisher = bank.db.publisher, None  # posted in-process below: no message to send
        try:
            accepted = request_movement(
                bank,
                staff,
                MovementRequest(
                    kind="deposit",
                    account_id=view["id"],
                    amount=format_minor(balance_minor, currency),
                    currency=currency,
                ),
                idempotency_key=f"fund-{uuid.uuid4().hex}",
                body={},
            )
        finally:
            bank.db.publisher = publisher
        report = post_transfer_jobs(bank.db, accepted.body["id"], batch_size=1)
        assert report.posted == [accepted.body["id"]]
        from core.models import OutboxMessage

        with bank.db.transaction() as s:
            s.execute(delete(OutboxMessage).where(OutboxMessage.job_id == accepted.body["id"]))
    return str(view["id"])


class Recorder:
    """A publisher that only remembers what the unit of work handed it, one list per committed transaction."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []

    def __call__(self, _db: Any, messages: list[Any]) -> None:
        self.calls.append(list(messages))

    @property
    def job_ids(self) -> list[str]:
        return [m.job_id for call in self.calls for m in call]


def _staff(bank: Bank) -> User:
    with bank.db.transaction() as s:
        teller = s.query(User).filter(User.role == "teller", User.username == "funding_teller").one_or_none()
    return teller or make_user(bank, role="teller", username="funding_teller")


class _RolledBack(Exception):
    pass


def rolled_back_job(bank: Bank, user_id: str, *, while_open: Any = None) -> None:
    """A transaction that writes a job, and so takes a job event id, calls while_open() if given (the id is still
    in flight meanwhile), then rolls back: the id is a gap no commit will fill."""
    from core import jobs

    try:
        with bank.db.transaction() as s:
            jobs.new_job(s, kind="transfer", user_id=user_id, resource_type="transfer", resource_id=uuid.uuid4().hex)
            s.flush()
            if while_open is not None:
                while_open()
            raise _RolledBack
    except _RolledBack:
        pass


def run_concurrently(fn: Any, n: int = 2) -> list[Any]:
    """Run fn in n threads released together; their results, or the first error raised."""
    import threading

    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(fn())
        except BaseException as exc:  # pragma: no cover - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def accept_transfer(
    bank: Bank,
    user: User,
    source: str,
    destination: str,
    amount: str = "1.00",
    *,
    key: str | None = None,
    currency: str = "EUR",
) -> Any:
    """A transfer accepted through core (as the API would), without posting it."""
    from core.transfers import TransferRequest, request_transfer

    cmd = TransferRequest(
        source_account_id=source, destination_account_id=destination, amount=amount, currency=currency
    )
    key = key or uuid.uuid4().hex
    return request_transfer(bank, user, cmd, idempotency_key=key, body={"key": key})
