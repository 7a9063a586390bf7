"""The outbox: messages written with the job, published after commit, relayed when publishing failed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from core.clock import utcnow
from core.models import Job, OutboxMessage

if TYPE_CHECKING:
    from core.db import Database

log = logging.getLogger(__name__)

# send(task_name, queue, job_id) hands one message to the broker or raises.
Send = Callable[[str, str, str], None]
# send_many(task_name, queue, job_ids): one message for many jobs, for the tasks in MANY.
SendMany = Callable[[str, str, list[str]], None]
# Tasks whose jobs may share one message: the task that takes the list of job ids instead of one. Posting claims
# many jobs per transaction anyway, so one message per job would cost the broker and the worker more than the
# posting itself. A job's own message (task_id = job id) is still what the relay and the re-drive send alone.
MANY = {"transfers.post": "transfers.post_many"}
MAX_PER_MESSAGE = 200


class PublishFailed(Exception):
    """The broker refused a message; it stays in the outbox for the relay."""


@dataclass(frozen=True)
class Outgoing:
    """What publishing one outbox row needs, known to the transaction that wrote it."""

    id: int
    task_name: str
    queue: str
    job_id: str


def outgoing(message: OutboxMessage) -> Outgoing:
    return Outgoing(message.id, message.task_name, message.queue, message.job_id)


def publish(db: Database, send: Send, messages: Iterable[Outgoing | int], send_many: SendMany | None = None) -> int:
    """Publish these messages now (right after the accepting commit). Failures stay for the relay. With
    `send_many`, the jobs of a task in MANY go many to a message.

    Give the Outgoing records the accepting transaction returned; bare outbox ids are read back first."""
    ready: list[Outgoing] = []
    ids: list[int] = []
    for m in messages:
        (ready if isinstance(m, Outgoing) else ids).append(m)  # type: ignore[arg-type]
    if ids:
        with db.single() as s:
            ready += [outgoing(m) for m in s.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)))]
    if not ready:
        return 0
    sent, failed = _send_all(db, send, ready, send_many)
    if failed:
        raise PublishFailed(f"{failed} message(s) left for the relay")
    return len(sent)


def relay(db: Database, send: Send, *, grace_seconds: float = 2.0, limit: int = 500,
          send_many: SendMany | None = None) -> int:
    """Publish whatever a crash or a broker outage left behind. Safe to run anywhere, any number of times."""
    now = utcnow()
    with db.transaction() as s:
        messages = list(
            s.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.available_at <= now - timedelta(seconds=grace_seconds))
                .order_by(OutboxMessage.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for m in messages:
            # Claim for a while so a concurrent relay does not send the same rows again.
            m.available_at = now + timedelta(seconds=30)
    sent = _send_all(db, send, [outgoing(m) for m in messages], send_many)[0]
    if sent:
        # A job's re-drive clock starts when its message leaves, not when it was accepted: otherwise every job
        # that waited out a broker outage in the outbox would be re-driven (sent twice) right after this relay.
        with db.statement() as conn:
            conn.execute(
                update(Job).where(Job.id.in_([m.job_id for m in sent]), Job.status == "queued").values(updated_at=now)
            )
    return len(sent)


def _batches(messages: list[Outgoing], many: bool) -> list[list[Outgoing]]:
    """What goes to the broker together: each message alone, or (many) the messages of a MANY task in order, up
    to MAX_PER_MESSAGE a message."""
    if not many:
        return [[m] for m in messages]
    batches: list[list[Outgoing]] = []
    open_batch: dict[tuple[str, str], list[Outgoing]] = {}
    for m in messages:
        if m.task_name not in MANY:
            batches.append([m])
            continue
        batch = open_batch.get((m.task_name, m.queue))
        if batch is None or len(batch) >= MAX_PER_MESSAGE:
            batch = open_batch[(m.task_name, m.queue)] = []
            batches.append(batch)
        batch.append(m)
    return batches


def _send_all(db: Database, send: Send, messages: list[Outgoing],
              send_many: SendMany | None = None) -> tuple[list[Outgoing], int]:
    sent: list[Outgoing] = []
    failed: dict[int, str] = {}
    for batch in _batches(messages, send_many is not None):
        first = batch[0]
        try:
            if len(batch) == 1:
                send(first.task_name, first.queue, first.job_id)
            else:
                assert send_many is not None
                send_many(MANY[first.task_name], first.queue, [m.job_id for m in batch])
            sent.extend(batch)
        except Exception as exc:  # the broker is down: keep the rows, the relay retries
            for m in batch:
                failed[m.id] = f"{type(exc).__name__}: {exc}"
            log.warning("outbox: could not publish job %s%s: %s", first.job_id,
                        f" and {len(batch) - 1} more" if len(batch) > 1 else "", failed[first.id])
            break
    if sent:  # one statement for everything sent, however many requests it came from
        with db.statement() as conn:
            conn.execute(delete(OutboxMessage).where(OutboxMessage.id.in_([m.id for m in sent])))
    if not failed:
        return sent, 0
    with db.transaction() as s:
        for mid, error in failed.items():
            row = s.get(OutboxMessage, mid)
            if row is not None:
                row.attempts += 1
                row.last_error = error[:1000]
                row.available_at = utcnow() + timedelta(seconds=min(60, 2 ** min(row.attempts, 6)))
    return sent, len(failed)


def pending(db: Database) -> int:
    with db.transaction() as s:
        return len(list(s.scalars(select(OutboxMessage.id).limit(10000))))
