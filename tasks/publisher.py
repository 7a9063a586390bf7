"""Handing messages to the broker: the one place the API, beat and workers publish through."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from core import outbox
from core.db import Database
from tasks import celery

log = logging.getLogger(__name__)
BREAKER_SECONDS = 5.0

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_broker_down_until = 0.0


def send(task_name: str, queue: str, job_id: str) -> None:
    """Publish one job's message. The job id is the task id, so duplicates are recognisable."""
    celery.send_task(task_name, args=[job_id], task_id=job_id, queue=queue, routing_key=queue, retry=False)



def publish_soon(db: Database, ids: Iterable[int]) -> None:
    """Publish just after the accepting request has answered. The rows are committed, so a crash or a dead
    broker only delays the message until the relay sends it; after a failure the API stops trying for a few
    seconds and leaves everything to the relay, so requests never queue up behind a dead broker."""
    ids = list(ids)
    if not ids or time.monotonic() < _broker_down_until:
        return
    _pool().submit(_publish_in_background, db, ids)


def _publish_in_background(db: Database, ids: list[int]) -> None:
    global _broker_down_until
    try:
        outbox.publish(db, send, ids)
    except Exception:
        log.warning("publishing after accept failed; the outbox relay will retry", exc_info=True)
        _broker_down_until = time.monotonic() + BREAKER_SECONDS


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bankq-publish")
        return _executor


def broker_ping() -> None:
    """Raise if the broker does not answer within a couple of seconds."""
    with celery.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        client = getattr(conn.default_channel, "client", None)
        if client is not None and hasattr(client, "ping"):
            client.ping()
