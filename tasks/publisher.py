"""Handing messages to the broker: the one place the API, beat and workers publish through."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import Celery

from core import outbox
from core.db import Database
from core.outbox import Outgoing
from tasks import celery

log = logging.getLogger(__name__)
BREAKER_SECONDS = 5.0

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_broker_down_until = 0.0
_pending: deque[tuple[Database, Outgoing | int]] = deque()
_draining = False


def send(task_name: str, queue: str, job_id: str) -> None:
    """Publish one job's message. The job id is the task id, so duplicates are recognisable."""
    celery.send_task(task_name, args=[job_id], task_id=job_id, queue=queue, routing_key=queue, retry=False)


def send_many(task_name: str, queue: str, job_ids: list[str]) -> None:
    """Publish one message for many jobs (core.outbox.MANY): the task takes the list."""
    celery.send_task(task_name, args=[job_ids], queue=queue, routing_key=queue, retry=False)


def publish_now(db: Database, messages: list[Outgoing]) -> None:
    """The publisher of workers (beat ticks run in them too): send right after the task's commit. A failure
    is logged by the unit of work and the rows stay for the outbox relay, which is all that tries for a few
    seconds afterwards, so tasks do not wait on a dead broker one commit after another."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        return
    try:
        outbox.publish(db, send, messages, send_many)
    except Exception:
        _broker_down_until = time.monotonic() + BREAKER_SECONDS
        raise


def publish_soon(db: Database, messages: Iterable[Outgoing | int]) -> None:
    """The API's publisher: send what a request committed to the outbox without making the request wait. The
    rows are committed, so a crash or a dead broker only delays the message until the relay sends it; after a
    failure the API stops trying for a few seconds and leaves everything to the relay, so requests never queue
    up behind a dead broker.

    One background thread sends whatever has piled up since it last looked and deletes the sent rows in one
    statement: under load many requests share that statement, and an idle process adds no delay."""
    global _draining
    messages = list(messages)
    if not messages or time.monotonic() < _broker_down_until:
        return
    with _lock:
        _pending.extend((db, m) for m in messages)
        if _draining:
            return  # the running drain picks these up
        _draining = True
    try:
        _pool().submit(_drain)
    except RuntimeError:  # interpreter shutting down: the relay sends them
        with _lock:
            _draining = False


def _drain() -> None:
    global _draining
    try:
        while True:
            with _lock:
                if not _pending:
                    _draining = False
                    return
                batch = list(_pending)
                _pending.clear()
            by_db: dict[int, tuple[Database, list[Outgoing | int]]] = {}
            for db, message in batch:
                by_db.setdefault(id(db), (db, []))[1].append(message)
            for db, messages in by_db.values():
                _publish_in_background(db, messages)
    except BaseException:  # never leave the flag set: the next publish must start a new drain
        with _lock:
            _draining = False
        raise


def _publish_in_background(db: Database, messages: list[Outgoing | int]) -> None:
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        return  # left to the relay
    try:
        with celery.producer_or_acquire() as producer:  # one pooled producer for the whole batch

            def send_with(task_name: str, queue: str, job_id: str) -> None:
                celery.send_task(
                    task_name,
                    args=[job_id],
                    task_id=job_id,
                    queue=queue,
                    routing_key=queue,
                    retry=False,
                    producer=producer,
                )

            def send_many_with(task_name: str, queue: str, job_ids: list[str]) -> None:
                celery.send_task(task_name, args=[job_ids], queue=queue, routing_key=queue, retry=False,
                                 producer=producer)

            outbox.publish(db, send_with, messages, send_many_with)
    except Exception as exc:
        log.warning("publishing after accept failed (%s: %s); the outbox relay will send it", type(exc).__name__, exc)
        _broker_down_until = time.monotonic() + BREAKER_SECONDS


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bankq-publish")
        return _executor


def broker_ping() -> None:
    """Raise if the broker does not answer within a couple of seconds. Redis answers a PING; RabbitMQ answers the
    AMQP handshake (login included) and the opening of a channel."""
    with celery.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        client = getattr(conn.default_channel, "client", None)
        if client is not None and hasattr(client, "ping"):
            client.ping()


WORKERS_ANSWERED = "answered"
WORKERS_NONE_ANSWERED = "none_answered"
WORKERS_NO_REMOTE_CONTROL = "no_remote_control"
WORKERS_BROKER_UNAVAILABLE = "broker_unavailable"
WORKERS_STATUSES = (WORKERS_ANSWERED, WORKERS_NONE_ANSWERED, WORKERS_NO_REMOTE_CONTROL, WORKERS_BROKER_UNAVAILABLE)


def workers_report(app: Celery = celery, timeout: float = 1.0) -> dict[str, Any]:
    """Workers answering a broadcast ping now, and why the list is what it is: an empty list means nobody answered;
    null means nobody could be asked (the embedded broker has no remote control, or the broker is down), which
    says nothing about the workers."""
    if app.conf.broker_url.startswith("filesystem"):
        return _workers(None, WORKERS_NO_REMOTE_CONTROL, "Unknown: the embedded broker has no remote control, so "
                        "workers cannot be pinged; their logs show whether they run.")
    if not app.conf.worker_enable_remote_control:
        return _workers(None, WORKERS_NO_REMOTE_CONTROL, "Unknown: remote control is turned off "
                        "(worker_enable_remote_control), so workers cannot be pinged.")
    try:
        names = sorted(name for reply in app.control.ping(timeout=timeout) for name in reply)
    except Exception as exc:
        log.warning("pinging workers failed: %s", exc)
        return _workers(None, WORKERS_BROKER_UNAVAILABLE, f"Unknown: the broker did not take the ping "
                        f"({type(exc).__name__}); /ready tells whether it is up.")
    if not names:
        return _workers([], WORKERS_NONE_ANSWERED, f"No worker answered a ping within {timeout:g} s.")
    return _workers(names, WORKERS_ANSWERED, f"{len(names)} worker(s) answered a ping.")


def _workers(names: list[str] | None, status: str, note: str) -> dict[str, Any]:
    return {"workers": names, "workers_status": status, "workers_note": note}
