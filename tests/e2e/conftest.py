"""End-to-end fixtures: a fresh database per test and the environment the real processes run with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.bank import Bank
from core.settings import Settings
from core.setup import prepare
from tests import servers, support
from tests.e2e.stack import ADMIN, E2E_SECRET_KEY, Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def e2e_env(pg_server: servers.Server, redis_server: servers.Server, tmp_path) -> Iterator[dict[str, str]]:
    url = support.create_database(pg_server.url, "bankq_e2e")
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/3",
        "BANKQ_DATA_DIR": str(tmp_path / "data"),
        "BANKQ_SECRET_KEY": E2E_SECRET_KEY,
        "BANKQ_REQUIRE_KYC": "false",
        "BANKQ_ADMIN_USERNAME": ADMIN[0],
        "BANKQ_ADMIN_PASSWORD": ADMIN[1],
        "BANKQ_REDRIVE_AFTER_SECONDS": "3",
        "BANKQ_OUTBOX_RELAY_SECONDS": "1",
    }
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    bank = Bank(Settings.from_env(env))
    prepare(bank)
    bank.db.dispose()
    yield env
    support.drop_database(pg_server.url, url)


@pytest.fixture
def stack_factory(tmp_path) -> Iterator[callable]:
    stacks: list[Stack] = []

    def make(env: dict[str, str]) -> Stack:
        stack = Stack(env, tmp_path)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop_all()
