"""Handing messages to the broker: the one place the API, beat and workers publish through."""

from __future__ import annotations

from collections.abc import Iterable

from core import outbox
from core.db import Database
from tasks import celery


def send(task_name: str, queue: str, job_id: str) -> None:
    """Publish one job's message. The job id is the task id, so duplicates are recognisable."""
    celery.send_task(task_name, args=[job_id], task_id=job_id, queue=queue, routing_key=queue, retry=False)


def publish_outbox(db: Database, ids: Iterable[int]) -> int:
    return outbox.publish(db, send, ids)


def broker_ping() -> None:
    """Raise if the broker does not answer within a couple of seconds."""
    with celery.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        client = getattr(conn.default_channel, "client", None)
        if client is not None and hasattr(client, "ping"):
            client.ping()
