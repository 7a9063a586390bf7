"""Fixtures: real PostgreSQL and Redis (throwaway servers unless TEST_DATABASE_URL/TEST_REDIS_URL are set), and
RabbitMQ for the tests that ask for it (throwaway unless TEST_AMQP_URL is set)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

os.environ.setdefault("BANKQ_DATA_DIR", tempfile.mkdtemp(prefix="bankq-test-data-"))
os.environ.setdefault("BANKQ_SECRET_KEY", "test-only-secret-key-0123456789abcdef0123456789")

from core.accounts import ensure_cash_accounts  # noqa: E402
from core.bank import Bank  # noqa: E402
from core.clock import clock  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.setup import migrate  # noqa: E402
from tests import servers, support  # noqa: E402

# The tests that start real processes (API, workers, beat, a browser, a RabbitMQ node). Under pytest-xdist (`make
# test` runs two workers) each of these two groups runs in order on one worker, beside the unit and integration
# tests: at most two stacks run at once, and a browser or a RabbitMQ node is started once per group. The groups are
# about equally long (the long supervised-process tests in one, the broker-parametrised ones in the other).
PROCESS_GROUPS = {
    "processes-supervised": ("tests/browser/", "tests/e2e/test_chaos.py", "tests/e2e/test_launcher.py",
                             "tests/e2e/test_bench_tiny.py", "tests/e2e/test_embedded_default.py"),
    "processes-brokers": ("tests/e2e/", "tests/integration/test_rabbitmq_broker.py"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for group, prefixes in PROCESS_GROUPS.items():  # first match wins
            if item.nodeid.startswith(prefixes):
                item.add_marker(pytest.mark.xdist_group(group))
                break


@pytest.fixture(scope="session")
def pg_server() -> Iterator[servers.Server]:
    server = servers.postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers.Server]:
    server = servers.redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def amqp_server() -> Iterator[servers.Server]:
    """Started on first use only: a RabbitMQ node takes a few seconds to boot."""
    server = servers.rabbitmq()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(pg_server: servers.Server) -> Iterator[str]:
    url = support.create_database(pg_server.url)
    migrate(url)
    yield url
    support.drop_database(pg_server.url, url)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_server: servers.Server, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    env = {
        "BANKQ_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "CELERY_BROKER_URL": "",  # Redis is the broker here, whatever the shell says; RabbitMQ tests set their own
        "BANKQ_SECRET_KEY": os.environ["BANKQ_SECRET_KEY"],
    }
    # The Celery app reads its configuration lazily, on first use: point it at this session's servers.
    os.environ.update(env)
    return Settings.from_env(env)


@pytest.fixture(scope="session")
def session_bank(settings: Settings) -> Iterator[Bank]:
    bank = Bank(settings, pool_size=24)
    yield bank
    bank.db.dispose()


@pytest.fixture
def bank(session_bank: Bank) -> Iterator[Bank]:
    session_bank.db.publisher = None  # core alone leaves the outbox to the relay; the `app` fixture installs the API's
    support.truncate_all(session_bank)
    support.clear_data_dir(session_bank.settings.data_dir)
    ensure_cash_accounts(session_bank.db)
    clock.unfreeze()
    yield session_bank
    clock.unfreeze()


@pytest.fixture
def app(bank: Bank):  # type: ignore[no-untyped-def]
    from api import create_app

    application = create_app(bank=bank)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()
