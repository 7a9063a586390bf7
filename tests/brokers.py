"""Celery configured for a given broker, the way a bankq process started with that environment would be."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from celery import Celery

ROOT = Path(__file__).resolve().parents[1]


def celeryconfig_for(env: dict[str, str]) -> ModuleType:
    """celeryconfig.py evaluated afresh with env over os.environ (it reads the settings once, on import)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        spec = importlib.util.spec_from_file_location("bankq_celeryconfig_under_test", ROOT / "celeryconfig.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        os.environ.clear()
        os.environ.update(saved)


def celery_app_for(env: dict[str, str]) -> Celery:
    """A Celery app with bankq's configuration for env: what tasks.celery is in a process started with env."""
    app = Celery("bankq")
    app.config_from_object(celeryconfig_for(env))
    return app


def reset_amqp_queues(url: str) -> None:
    """Delete bankq's queues on a shared RabbitMQ so no test sees another's messages (deleting is idempotent)."""
    from kombu import Connection

    from core.jobs import QUEUES

    with Connection(url, connect_timeout=5) as conn:
        channel = conn.channel()
        for name in QUEUES:
            channel.queue_delete(name)
