"""Baseline B's Celery app: `celery -A bench.noop_app worker`. Same broker and delivery settings as bankq's,
a task that does nothing but count itself in Redis."""

from __future__ import annotations

import os

import redis
from celery import Celery

QUEUE = "bench_noop"
TASK = "bench.noop"


def make_app(broker_url: str) -> Celery:
    celery = Celery("bench_noop", broker=broker_url)
    # The delivery settings that shape bankq's throughput (celeryconfig.py), so the baseline is like for like.
    celery.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=4,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 900, "socket_keepalive": True},
    )
    return celery


app = make_app(os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"))
_counter: redis.Redis | None = None


@app.task(name=TASK)
def noop(counter_key: str) -> None:
    global _counter
    if _counter is None:
        _counter = redis.Redis.from_url(app.conf.broker_url)
    _counter.incr(counter_key)
