"""End-to-end fixtures: a fresh database per test and the environment the real processes run with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from core.bank import Bank
from core.settings import Settings
from core.setup import prepare
from tests import servers, support
from tests.brokers import reset_amqp_queues
from tests.e2e.stack import ADMIN, E2E_SECRET_KEY, Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def e2e_env(pg_server: servers.Server, redis_server: servers.Server, tmp_path) -> Iterator[dict[str, str]]:
    url = support.create_database(pg_server.url, "bankq_e2e")
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/3",
        "CELERY_BROKER_URL": "",  # REDIS_URL is the broker unless a test says otherwise
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


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> str:
    """The Celery broker under test. Redis stays the cache, rate-limit store and beat lock either way."""
    return str(request.param)


@pytest.fixture
def broker_env(broker: str, e2e_env: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    """e2e_env on the broker under test: Redis doubling as the broker (REDIS_URL alone, the usual setup), or
    CELERY_BROKER_URL naming RabbitMQ (started on first use)."""
    if broker == "redis":
        return e2e_env
    url = request.getfixturevalue("amqp_server").url
    reset_amqp_queues(url)
    return {**e2e_env, "CELERY_BROKER_URL": url}


@dataclass
class Outage:
    """A broker of the kind under test that the test may stop and start again on the same address."""

    url: str
    server: servers.Server

    def stop(self) -> None:
        if isinstance(self.server, servers.RabbitMQ):
            self.server.halt()  # keeps the node's data: the session's other tests use it again
        else:
            self.server.stop()

    def start(self) -> None:
        if isinstance(self.server, servers.RabbitMQ):
            if self.server.process is None:
                self.server.resume()
        else:
            self.server = servers.start_redis(self.server.port)


@pytest.fixture
def broker_outage(broker: str, request: pytest.FixtureRequest) -> Iterator[Outage]:
    if broker == "redis":
        server = servers.start_redis()
        outage = Outage(f"redis://127.0.0.1:{server.port}/0", server)
        yield outage
        outage.server.stop()
        return
    amqp = request.getfixturevalue("amqp_server")
    if not isinstance(amqp, servers.RabbitMQ):
        pytest.skip("TEST_AMQP_URL names a RabbitMQ these tests must not stop")
    reset_amqp_queues(amqp.url)
    outage = Outage(amqp.url, amqp)
    yield outage
    outage.start()  # running again for the tests after this one, whatever happened


@pytest.fixture
def own_servers() -> Iterator[tuple[servers.Server, servers.Server]]:
    """PostgreSQL and Redis of the test's own, whatever TEST_DATABASE_URL says: the test stops and starts them.
    PostgreSQL keeps synchronous commit, so a crash loses nothing it acknowledged, as in production."""
    pg, redis = servers.start_postgres(crash_safe=True), servers.start_redis()
    yield pg, redis
    redis.stop()
    pg.stop()
