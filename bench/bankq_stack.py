"""A bankq database with customers and funded accounts, and the environment its real processes run with."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.stack import Stack
from core.bank import Bank
from core.models import User
from core.settings import Settings
from core.setup import prepare
from tests import support

CURRENCY = "EUR"
FUNDING_MINOR = 10**12


@dataclass
class Customer:
    user: User
    account_id: str


def bankq_env(stack: Stack, database_url: str, name: str) -> dict[str, str]:
    data_dir = stack.work_dir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BANKQ_", "CELERY_"))}
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": stack.redis_url,
        "BANKQ_DATA_DIR": str(data_dir),
        "BANKQ_SECRET_KEY": secrets.token_urlsafe(48),
        "BANKQ_REQUIRE_KYC": "false",
    })
    return env


def new_bank(stack: Stack, env: dict[str, str], *, pool_size: int = 8) -> Bank:
    bank = Bank(Settings.from_env(env), pool_size=pool_size)
    stack.callback(bank.db.dispose)
    prepare(bank)
    return bank


def open_customers(bank: Bank, n: int) -> list[Customer]:
    customers = []
    for _ in range(n):
        user = support.make_user(bank)
        customers.append(Customer(user, support.open_account(bank, user, CURRENCY, FUNDING_MINOR)))
    return customers


def libpq_connect(database_url: str) -> psycopg.Connection:
    return psycopg.connect(support.libpq(database_url), autocommit=True)


def transfer_job_counts(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) FROM jobs WHERE kind = 'transfer' GROUP BY status").fetchall()
    return {status: int(n) for status, n in rows}


def posting_transactions(conn: psycopg.Connection) -> int:
    """Transfers posted in one transaction share its posted_at, so distinct values count the transactions."""
    row = conn.execute("SELECT count(DISTINCT posted_at) FROM transfers WHERE kind = 'transfer'").fetchone()
    return int(row[0]) if row else 0


def money_conserved(conn: psycopg.Connection, customers: int) -> bool:
    """Transfers move money between customers only: their total is still what the deposits put in, every
    posting sums to zero, and every balance is the sum of its account's entries."""
    total = conn.execute("SELECT coalesce(sum(balance), 0) FROM accounts WHERE kind = 'customer'").fetchone()
    unbalanced_postings = conn.execute(
        "SELECT count(*) FROM (SELECT transfer_id FROM entries GROUP BY transfer_id HAVING sum(amount) <> 0) u"
    ).fetchone()
    drifted_balances = conn.execute(
        "SELECT count(*) FROM accounts a LEFT JOIN (SELECT account_id, sum(amount) AS total FROM entries "
        "GROUP BY account_id) e ON e.account_id = a.id WHERE a.kind = 'customer' AND a.balance <> coalesce(e.total, 0)"
    ).fetchone()
    return (total, unbalanced_postings, drifted_balances) == ((customers * FUNDING_MINOR,), (0,), (0,))


def data_dir(env: dict[str, str]) -> Path:
    return Path(env["BANKQ_DATA_DIR"])
