"""The Celery configuration each kind of broker gets."""

from __future__ import annotations

import inspect
from pathlib import Path

import amqp

from tests.brokers import celeryconfig_for


def _config(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    return celeryconfig_for({"BANKQ_DATA_DIR": str(tmp_path), "REDIS_URL": "", "CELERY_BROKER_URL": "", **env})


def test_rabbitmq_gets_publisher_confirms_durable_queues_and_no_redis_options(tmp_path: Path) -> None:
    config = _config(tmp_path, REDIS_URL="redis://cache:6379/0", CELERY_BROKER_URL="amqp://guest:guest@rabbit//")
    assert config.broker_url == "amqp://guest:guest@rabbit//"
    assert config.broker_transport_options["confirm_publish"] is True
    # py-amqp's Connection swallows unknown keyword arguments: a misspelt option would be silently ignored.
    accepted = inspect.signature(amqp.Connection.__init__).parameters
    assert set(config.broker_transport_options) <= set(accepted)
    assert config.broker_heartbeat > 0 and config.broker_connection_timeout > 0
    assert all(queue.durable and not queue.auto_delete for queue in config.task_queues)
    assert config.redbeat_redis_url == "redis://cache:6379/0"  # Redis still holds beat's lock


def test_pyamqp_and_amqps_urls_are_rabbitmq_too(tmp_path: Path) -> None:
    for url in ("pyamqp://guest@rabbit//", "amqps://guest@rabbit//"):
        assert _config(tmp_path, CELERY_BROKER_URL=url).broker_transport_options["confirm_publish"] is True


def test_redis_broker_keeps_its_transport_options(tmp_path: Path) -> None:
    config = _config(tmp_path, REDIS_URL="redis://cache:6379/0")
    assert config.broker_transport_options["visibility_timeout"] == 900
    assert "confirm_publish" not in config.broker_transport_options


def test_filesystem_broker_has_no_remote_control(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config.broker_url == "filesystem://" and config.worker_enable_remote_control is False
