"""Bringing a database to life: migrations, the bank's cash accounts, the bootstrap admin."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from core.accounts import ensure_cash_accounts
from core.bank import Bank
from core.users import ensure_admin

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def prepare(bank: Bank) -> None:
    migrate(bank.settings.database_url)
    ensure_cash_accounts(bank.db)
    ensure_admin(bank.db, bank.settings)
