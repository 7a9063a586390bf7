"""Tables. PostgreSQL is the truth; the same schema runs on SQLite for the embedded default."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.clock import utcnow

Json = JSON().with_variant(JSONB(), "postgresql")
Serial = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(32))
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    role: Mapped[str] = mapped_column(String(16), default="customer")
    kyc_status: Mapped[str] = mapped_column(String(16), default="unverified")
    status: Mapped[str] = mapped_column(String(16), default="active")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(Timestamp)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    monthly_statements: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
    # The transaction that last wrote the row, set by a trigger on PostgreSQL: API processes drop their copy of a
    # user who changed (core.local_users). Never set by the application.
    changed_xid: Mapped[int | None] = mapped_column(BigInteger, index=True)
    __table_args__ = (
        CheckConstraint("role IN ('customer', 'teller', 'admin')", name="role"),
        CheckConstraint("kyc_status IN ('unverified', 'pending', 'verified', 'rejected')", name="kyc_status"),
        CheckConstraint("status IN ('active', 'suspended', 'closed')", name="status"),
    )


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    # The database's clock when the revocation was written: API processes read what is new since they last looked.
    revoked_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), index=True)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(34), unique=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    type: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default="customer")
    status: Mapped[str] = mapped_column(String(16), default="active")
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
    __table_args__ = (
        UniqueConstraint("id", "currency", name="uq_accounts_id_currency"),
        CheckConstraint("kind = 'internal' OR balance >= 0", name="balance_not_negative"),
        CheckConstraint("kind IN ('customer', 'internal')", name="kind"),
        CheckConstraint("status IN ('active', 'frozen', 'closed')", name="status"),
        CheckConstraint(
            "type IN ('checking', 'savings', 'cash', 'loan', 'interest', 'fees', 'receivable')", name="type"
        ),
    )


class Transfer(Base):
    __tablename__ = "transfers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(String(36))
    batch_index: Mapped[int | None] = mapped_column(Integer)  # place in its batch job; NULL: a job of its own
    kind: Mapped[str] = mapped_column(String(16), default="transfer")
    source_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    destination_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(24), default="pending")
    failure_code: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    execute_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    posted_at: Mapped[datetime | None] = mapped_column(Timestamp)
    receipt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # A reversal's original. At most one reversal of a transfer is pending or posted (a failed one does not count).
    reverses: Mapped[str | None] = mapped_column(ForeignKey("transfers.id"))
    __table_args__ = (
        Index("ix_transfers_receipt_pending", "receipt_at", "status"),
        Index(
            "uq_transfers_reverses_live",
            "reverses",
            unique=True,
            postgresql_where=text("status <> 'failed'"),
            sqlite_where=text("status <> 'failed'"),
        ),
        Index("uq_transfers_job_id_batch_index", "job_id", "batch_index", unique=True),
        Index(
            "uq_transfers_job_id_single",
            "job_id",
            unique=True,
            postgresql_where=text("batch_index IS NULL"),
            sqlite_where=text("batch_index IS NULL"),
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("source_account_id <> destination_account_id", name="distinct_accounts"),
        CheckConstraint(
            "kind IN ('transfer', 'deposit', 'withdrawal', 'reversal', 'disbursement', 'loan_repayment', "
            "'interest_accrual', 'late_fee', 'charges_paid', 'loan_opening')",
            name="kind",
        ),
        CheckConstraint("(kind = 'reversal') = (reverses IS NOT NULL)", name="reversal_link"),
    )


class TransferBatch(Base):
    """Up to 1000 transfers accepted as one job (`transfers.job_id` is this job, `batch_index` their order).
    `atomic`: all post or none do."""

    __tablename__ = "transfer_batches"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    atomic: Mapped[bool] = mapped_column(Boolean, default=False)
    item_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (CheckConstraint("item_count BETWEEN 1 AND 1000", name="item_count"),)


class CustomerLimit(Base):
    """A customer's outgoing limits in one currency (NULL: the bank's default) and the running usage of the current
    UTC day and calendar month. Posting locks it (after the accounts) so the allowance cannot be overspent."""

    __tablename__ = "customer_limits"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    daily_limit: Mapped[int | None] = mapped_column(BigInteger)
    monthly_limit: Mapped[int | None] = mapped_column(BigInteger)
    usage_day: Mapped[date] = mapped_column(Date)
    day_used: Mapped[int] = mapped_column(BigInteger, default=0)
    usage_month: Mapped[date] = mapped_column(Date)  # the first day of the month
    month_used: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (
        CheckConstraint("daily_limit IS NULL OR daily_limit > 0", name="daily_limit_positive"),
        CheckConstraint("monthly_limit IS NULL OR monthly_limit > 0", name="monthly_limit_positive"),
        CheckConstraint("day_used >= 0 AND month_used >= 0", name="usage_not_negative"),
    )


class Entry(Base):
    """One immutable line of a posting. A posting's entries sum to zero."""

    __tablename__ = "entries"
    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"))
    account_id: Mapped[str] = mapped_column(String(36))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(String(500))
    posted_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (
        UniqueConstraint("transfer_id", "account_id", name="uq_entries_transfer_account"),
        ForeignKeyConstraint(
            ["account_id", "currency"], ["accounts.id", "accounts.currency"], name="fk_entries_account_currency"
        ),
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        Index("ix_entries_account_id_id", "account_id", "id"),
    )


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    queue: Mapped[str] = mapped_column(String(32))
    task_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default="queued")
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    resource_type: Mapped[str | None] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(36))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(Json)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    available_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'awaiting_confirmation', 'succeeded', 'failed', 'cancelled')",
            name="status",
        ),
        Index("ix_jobs_user_created", "user_id", "created_at", "id"),
        Index("ix_jobs_status_available", "status", "available_at"),
    )


class JobEvent(Base):
    """One row per change of a job's status, written by the database itself (triggers on `jobs`, migration 0014),
    in the transaction that made the change: no code path can change a status without its event. `job` is the
    job's row as it was then; the API renders it as GET /api/v1/jobs/{id} would have."""

    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(32))
    job: Mapped[dict[str, Any]] = mapped_column(Json)
    at: Mapped[datetime] = mapped_column(Timestamp)
    __table_args__ = (
        Index("ix_job_events_user_id_id", "user_id", "id"),
        Index("ix_job_events_job_id_id", "job_id", "id"),
    )


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(Json)
    job_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)


class OutboxMessage(Base):
    """A message to publish after commit. Deleted once the broker has it; the relay retries the rest."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    task_name: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    available_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    actor_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any] | None] = mapped_column(Json)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class KycDocument(Base):
    """An identity document a customer uploaded, what OCR read from it, and the decision."""

    __tablename__ = "kyc_documents"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    job_id: Mapped[str] = mapped_column(String(36), unique=True)
    document_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="processing")
    stored_name: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    extracted: Mapped[dict[str, Any] | None] = mapped_column(Json)
    checks: Mapped[dict[str, Any] | None] = mapped_column(Json)
    reasons: Mapped[list[str] | None] = mapped_column(Json)
    processing_ms: Mapped[int | None] = mapped_column(Integer)
    reviewed_by: Mapped[str | None] = mapped_column(String(36))
    review_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
    __table_args__ = (
        CheckConstraint("document_type IN ('passport', 'id_card')", name="document_type"),
        CheckConstraint("status IN ('processing', 'verified', 'needs_review', 'rejected')", name="status"),
        Index("ix_kyc_documents_status_created", "status", "created_at"),
    )


class Report(Base):
    """An account statement for a period, rendered by a worker to a file under the data folder."""

    __tablename__ = "reports"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    requested_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    job_id: Mapped[str] = mapped_column(String(36), unique=True)
    format: Mapped[str] = mapped_column(String(8))
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    monthly: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="processing")
    stored_name: Mapped[str | None] = mapped_column(String(80))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    entry_count: Mapped[int | None] = mapped_column(Integer)
    opening_balance: Mapped[int | None] = mapped_column(BigInteger)
    closing_balance: Mapped[int | None] = mapped_column(BigInteger)
    total_in: Mapped[int | None] = mapped_column(BigInteger)
    total_out: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(Timestamp)
    __table_args__ = (
        CheckConstraint("format IN ('pdf', 'csv')", name="format"),
        CheckConstraint("status IN ('processing', 'ready', 'failed')", name="status"),
        CheckConstraint("period_from <= period_to", name="period"),
    )


class MonthlyStatement(Base):
    """The guard that makes the monthly statement of an account happen once per month."""

    __tablename__ = "monthly_statements"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # the month's first day
    report_id: Mapped[str] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Notification(Base):
    """A message to a customer. The row exists before anything is sent (it is the outbox), and records the
    outcome after; `message_id` is stable across retries so receivers can deduplicate."""

    __tablename__ = "notifications"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(200))
    recipient: Mapped[str] = mapped_column(String(254))
    context: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # An email's file (core.notifications.attachments): where it is under the data folder, its name, type, size and
    # SHA-256. The file is read when the message is sent, never stored here.
    attachment: Mapped[dict[str, Any] | None] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    __table_args__ = (
        CheckConstraint("channel IN ('email', 'sms', 'in_app')", name="channel"),
        CheckConstraint("status IN ('queued', 'sending', 'sent', 'failed')", name="status"),
        Index("ix_notifications_status_next", "status", "next_attempt_at"),
    )


class OneTimeCode(Base):
    """A one-time code. Only an HMAC of the code (with a server-side pepper) is stored, never the code."""

    __tablename__ = "one_time_codes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(36))
    binding: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    __table_args__ = (
        CheckConstraint(
            "purpose IN ('transfer', 'login', 'password_reset', 'verify_email', 'verify_phone')", name="purpose"
        ),
        CheckConstraint("status IN ('active', 'used', 'superseded', 'expired', 'blocked')", name="status"),
        Index("ix_one_time_codes_user_purpose", "user_id", "purpose", "status"),
        Index("ix_one_time_codes_user_created", "user_id", "created_at"),
        Index("ix_one_time_codes_subject", "subject_id"),
    )


class Reminder(Base):
    """A customer's reminder, once or repeating. `next_at` is the next occurrence still to act on."""

    __tablename__ = "reminders"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    message: Mapped[str] = mapped_column(String(500))
    channel: Mapped[str] = mapped_column(String(16))
    repeat: Mapped[str] = mapped_column(String(16), default="none")
    status: Mapped[str] = mapped_column(String(16), default="active")
    remind_at: Mapped[datetime] = mapped_column(Timestamp)
    next_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (
        CheckConstraint("channel IN ('email', 'sms', 'in_app')", name="channel"),
        CheckConstraint("repeat IN ('none', 'daily', 'weekly', 'monthly')", name="repeat"),
        CheckConstraint("status IN ('active', 'done', 'cancelled')", name="status"),
        Index("ix_reminders_status_next", "status", "next_at"),
        Index("ix_reminders_user_created", "user_id", "created_at", "id"),
    )


class ReminderOccurrence(Base):
    """One occurrence of a reminder, acted on (sent) or skipped with a reason. The unique key is the guard."""

    __tablename__ = "reminder_occurrences"
    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    reminder_id: Mapped[str] = mapped_column(ForeignKey("reminders.id"))
    due_at: Mapped[datetime] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    notification_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (
        UniqueConstraint("reminder_id", "due_at", name="uq_reminder_occurrences_reminder_due"),
        CheckConstraint("status IN ('sent', 'skipped', 'failed')", name="status"),
    )


class StandingOrder(Base):
    """A repeating transfer. Each due date becomes one transfer; `next_date` is the next one still to act on."""

    __tablename__ = "standing_orders"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    source_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    destination_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(500))
    frequency: Mapped[str] = mapped_column(String(16))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    next_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("source_account_id <> destination_account_id", name="distinct_accounts"),
        CheckConstraint("frequency IN ('daily', 'weekly', 'monthly')", name="frequency"),
        CheckConstraint("status IN ('active', 'ended', 'cancelled')", name="status"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="end_after_start"),
        Index("ix_standing_orders_status_next", "status", "next_date"),
        Index("ix_standing_orders_user_created", "user_id", "created_at", "id"),
    )


class StandingOrderOccurrence(Base):
    """One due date of a standing order and what became of it: the transfer's job, or why there is none.
    The unique (order, date) is the last guard against paying twice."""

    __tablename__ = "standing_order_occurrences"
    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("standing_orders.id"))
    occurrence_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[str | None] = mapped_column(String(36))
    transfer_id: Mapped[str | None] = mapped_column(String(36))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    __table_args__ = (
        UniqueConstraint("order_id", "occurrence_date", name="uq_standing_order_occurrences_order_date"),
        CheckConstraint("status IN ('requested', 'posted', 'failed', 'cancelled', 'skipped')", name="status"),
        Index("ix_standing_order_occurrences_status", "status"),
    )


class Webhook(Base):
    """A customer's endpoint (Standard Webhooks). The signing secrets are stored encrypted (core.webhooks.secrets);
    during the 24 h after a rotation the previous one signs too. `failing_since` is the first failure of the
    current run of failures: five days of it disables the endpoint."""

    __tablename__ = "webhooks"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(Json)
    description: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="active")
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None] = mapped_column(Timestamp)
    failing_since: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (
        CheckConstraint("status IN ('active', 'disabled', 'deleted')", name="status"),
        Index("ix_webhooks_user_created", "user_id", "created_at", "id"),
    )


class WebhookCursor(Base):
    """How far fan-out has read job_events (every event up to last_event_id has its deliveries). One row, locked
    FOR UPDATE by the fan-out, so two dispatchers take turns: see core.webhooks.fan_out."""

    __tablename__ = "webhook_cursors"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class WebhookDelivery(Base):
    """One event of one type for one endpoint: what is sent (the body, serialized once) and where it stands.
    `message_id` is the webhook-id header, the same on every attempt. `claim` names the one dispatch allowed to
    send the current attempt; `lease_until` bounds a claim whose worker or message was lost."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    claim: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp)
    event_at: Mapped[datetime] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (
        UniqueConstraint("event_id", "webhook_id", "type", name="uq_webhook_deliveries_event_webhook_type"),
        CheckConstraint("status IN ('pending', 'sending', 'succeeded', 'failed')", name="status"),
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_status", "webhook_id", "status"),
    )


class WebhookAttempt(Base):
    """One try of a delivery: the answer's status code or why there was none, and how long it took."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"))
    webhook_id: Mapped[str] = mapped_column(String(36))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    duration_ms: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (
        UniqueConstraint("delivery_id", "attempt", name="uq_webhook_attempts_delivery_attempt"),
        Index("ix_webhook_attempts_webhook_id", "webhook_id", "id"),
    )


class LoanProduct(Base):
    """What the bank lends: currency, yearly rate (in millionths, so "0.0799" is 79900), amount and term bounds."""

    __tablename__ = "loan_products"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    annual_rate_ppm: Mapped[int] = mapped_column(Integer)
    min_amount: Mapped[int] = mapped_column(BigInteger)
    max_amount: Mapped[int] = mapped_column(BigInteger)
    min_term_months: Mapped[int] = mapped_column(Integer)
    max_term_months: Mapped[int] = mapped_column(Integer)
    late_fee: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (
        CheckConstraint("annual_rate_ppm BETWEEN 0 AND 1000000", name="annual_rate"),
        CheckConstraint("min_amount > 0 AND min_amount <= max_amount", name="amounts"),
        CheckConstraint("min_term_months >= 1 AND min_term_months <= max_term_months", name="terms"),
        CheckConstraint("late_fee >= 0", name="late_fee"),
    )


class Loan(Base):
    """One application and, once approved and disbursed, the debt. The rate and term are copied from the product
    at application so a later product change never alters a running loan."""

    __tablename__ = "loans"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(ForeignKey("loan_products.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    currency: Mapped[str] = mapped_column(String(3))
    principal: Mapped[int] = mapped_column(BigInteger)
    annual_rate_ppm: Mapped[int] = mapped_column(Integer)
    term_months: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="applied")
    reason: Mapped[str | None] = mapped_column(String(200))
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(Timestamp)
    job_id: Mapped[str | None] = mapped_column(String(36))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    disbursement_transfer_id: Mapped[str | None] = mapped_column(ForeignKey("transfers.id"), unique=True)
    disbursed_on: Mapped[date | None] = mapped_column(Date)
    # The loan's own account in the ledger (internal, opened with the disbursement): minus the principal still owed.
    ledger_account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), unique=True)
    principal_paid: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    accrued_through: Mapped[date | None] = mapped_column(Date)  # interest is accrued up to this day
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (
        CheckConstraint("principal > 0", name="principal_positive"),
        CheckConstraint("principal_paid >= 0 AND principal_paid <= principal", name="principal_paid"),
        CheckConstraint("term_months >= 1", name="term_positive"),
        CheckConstraint(
            "status IN ('applied', 'approved', 'rejected', 'active', 'overdue', 'repaid')", name="status"
        ),
        CheckConstraint(
            "(status IN ('active', 'overdue', 'repaid')) = (disbursement_transfer_id IS NOT NULL)", name="disbursed"
        ),
        CheckConstraint("disbursement_transfer_id IS NULL OR ledger_account_id IS NOT NULL", name="ledger_account"),
        Index("ix_loans_status_created", "status", "created_at", "id"),
        Index("ix_loans_user_created", "user_id", "created_at", "id"),
    )


class LoanInstalment(Base):
    """One line of a loan's annuity schedule, written when the loan is disbursed."""

    __tablename__ = "loan_instalments"
    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    due_date: Mapped[date] = mapped_column(Date)
    payment: Mapped[int] = mapped_column(BigInteger)
    principal: Mapped[int] = mapped_column(BigInteger)
    interest: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="due")
    interest_accrued: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    interest_paid: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # ahead of the due date
    late_fee: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    paid_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_attempt_on: Mapped[date | None] = mapped_column(Date)
    reminded_on: Mapped[date | None] = mapped_column(Date)
    __table_args__ = (
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint(
            "interest_accrued >= 0 AND interest_accrued <= interest AND interest_paid >= 0 "
            "AND interest_paid <= interest_accrued AND late_fee >= 0",
            name="accrual",
        ),
        Index("ix_loan_instalments_status_due", "status", "due_date"),
        CheckConstraint("principal >= 0 AND interest >= 0 AND payment = principal + interest", name="parts"),
        CheckConstraint("status IN ('due', 'paid', 'overdue')", name="status"),
    )
