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


def publish(db: Database, send: Send, messages: Iterable[Outgoing | int]) -> int:
    """Publish these messages now (right after the accepting commit). Failures stay for the relay.

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
    sent, failed = _send_all(db, send, ready)
    if failed:
        raise PublishFailed(f"{failed} message(s) left for the relay")
    return len(sent)


def relay(db: Database, send: Send, *, grace_seconds: float = 2.0, limit: int = 500) -> int:
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
    sent = _send_all(db, send, [outgoing(m) for m in messages])[0]
    if sent:
        # A job's re-drive clock starts when its message leaves, not when it was accepted: otherwise every job
        # that waited out a broker outage in the outbox would be re-driven (sent twice) right after this relay.
        with db.statement() as conn:
            conn.execute(
                update(Job).where(Job.id.in_([m.job_id for m in sent]), Job.status == "queued").values(updated_at=now)
            )
    return len(sent)


def _send_all(db: Database, send: Send, messages: list[Outgoing]) -> tuple[list[Outgoing], int]:
    sent: list[Outgoing] = []
    failed: dict[int, str] = {}
    for m in messages:
        try:
            send(m.task_name, m.queue, m.job_id)
            sent.append(m)
        except Exception as exc:  # the broker is down: keep the row, the relay retries
            failed[m.id] = f"{type(exc).__name__}: {exc}"
            log.warning("outbox: could not publish job %s: %s", m.job_id, failed[m.id])
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
