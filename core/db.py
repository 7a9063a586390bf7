"""Engines and the unit of work: a transaction that publishes the outbox rows it wrote once it has committed, and
rings the process's doorbell when it changed a job's status (core.event_wakeups).
SQLite (embedded default) serialises writers with BEGIN IMMEDIATE."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, create_engine, event, insert, inspect, select, text
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, make_transient_to_detached, sessionmaker
from sqlalchemy.orm.attributes import instance_state

from core.errors import DependencyUnavailable
from core.models import Job, OutboxMessage, User
from core.outbox import Outgoing, outgoing

T = TypeVar("T")
log = logging.getLogger(__name__)
# publisher(db, messages) hands committed outbox rows to the broker. The process installs one at start-up (the API
# a batching one, workers a direct one); without one, or when it fails, the outbox relay sends the rows.
Publisher = Callable[["Database", list[Outgoing]], None]
_WRITTEN = "bankq.outbox.written"
_JOB_EVENTS = "bankq.job_events.written"
_QUEUED = "bankq.inserts.queued"
_USERS_CHANGED = "bankq.users.changed"
_INSERTS: dict[tuple[Any, ...], list[tuple[Any, bool]]] = {}
OUTBOX = cast(Table, OutboxMessage.__table__)


class Recorded(Exception):
    """A failure that must be recorded before the caller hears of it (a counted attempt, a failed job, an audit
    row). Raised inside `Database.transaction()`, the transaction commits what it wrote instead of rolling back,
    and then `error` is raised. Not for a savepoint (`begin_nested`): that one still rolls back."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def publish_after_commit(session: Session, message: OutboxMessage | Outgoing) -> None:
    """Remember an outbox row written in this session: its transaction publishes it once it has committed."""
    session.info.setdefault(_WRITTEN, []).append(message)


def queue_insert(session: Session, table: Table, values: dict[str, Any]) -> None:
    """An INSERT this transaction will make with the others queued beside it, by `insert_queued`: on PostgreSQL one
    statement (one round trip) for all of them, however many tables. For the hot accept path, where the ORM's
    unit of work cost more than the database did. The caller flushes within its own savepoint, if any."""
    session.info.setdefault(_QUEUED, []).append((table, values))


def insert_queued(session: Session) -> None:
    """Make the queued INSERTs now, in the order queued (rows of one table together). Outbox rows among them are
    published once the transaction has committed."""
    queued: list[tuple[Table, dict[str, Any]]] = session.info.pop(_QUEUED, [])
    if not queued:
        return
    groups: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
    for table, values in queued:
        groups.setdefault(table.name, (table, []))[1].append(values)
    postgres = session.get_bind().dialect.name == "postgresql"
    shape = (postgres, *((t.name, tuple(tuple(r) for r in rows)) for t, rows in groups.values()))
    statements = _INSERTS.get(shape)
    if statements is None:
        statements = _INSERTS[shape] = _inserts([g for g in groups.values()], postgres)
    params = {f"{t.name}_{i}_{column}": value
              for t, rows in groups.values() for i, row in enumerate(rows) for column, value in row.items()}
    if "jobs" in groups:
        job_events_written(session)
    for statement, returns_outbox in statements:
        result = session.connection().execute(statement, params)  # Core: no ORM layer to pass
        if returns_outbox:
            for row in result:
                publish_after_commit(session, Outgoing(*row))


def _inserts(groups: list[tuple[Table, list[dict[str, Any]]]], postgres: bool) -> list[tuple[Any, bool]]:
    """The statements for one shape of queued inserts, with a bound parameter per value (`jobs_0_status`), built
    once and reused: SQLAlchemy then compiles each shape once, not on every accept. On PostgreSQL one statement:
    WITH w0 AS (INSERT ...), w1 AS (INSERT ...) INSERT INTO outbox ... RETURNING."""
    built: list[tuple[Any, bool]] = []
    outbox: list[tuple[Any, bool]] = []
    for table, rows in groups:
        values = [{c: bindparam(f"{table.name}_{i}_{c}", type_=table.c[c].type) for c in row}
                  for i, row in enumerate(rows)]
        statement = insert(table).values(values if len(values) > 1 else values[0])
        if table.name == OUTBOX.name:
            returning = statement.returning(OUTBOX.c.id, OUTBOX.c.task_name, OUTBOX.c.queue, OUTBOX.c.job_id)
            outbox.append((returning, True))
        else:
            built.append((statement, False))
    built += outbox  # last: on PostgreSQL the statement the others are CTEs of, so its RETURNING is the result
    if not postgres or len(built) == 1:
        return built
    *ctes, (main, returns) = built
    return [(main.add_cte(*(st.cte(f"w{i}") for i, (st, _) in enumerate(ctes))), returns)]


def columns_of(model: type) -> list[Any]:
    """A model's columns in the order `detached` expects them."""
    mapper: Any = inspect(model)
    return [attr.columns[0] for attr in mapper.column_attrs]


@cache
def _column_keys(model: Any) -> tuple[str, ...]:
    """The attribute names of `columns_of(model)`, in its order (a model class)."""
    mapper: Any = inspect(model)
    return tuple(attr.key for attr in mapper.column_attrs)


def detached(model: type[T], row: Any) -> T:
    """A detached instance with every column loaded, from a Core row of `columns_of(model)`: what a Session would
    load and close over, for a fraction of the cost. For reading; it belongs to no session."""
    instance = inspect(model).class_manager.new_instance()
    # Straight into the instance's dict, as the ORM's own loading does: setattr would fire an attribute event
    # per column for a change history that make_transient_to_detached then discards.
    instance_state(instance).dict.update(zip(_column_keys(cast(type, model)), row, strict=True))
    make_transient_to_detached(instance)
    return instance  # type: ignore[no-any-return]


def job_events_written(session: Session) -> None:
    """Say that this transaction changed a job's status (so the database wrote a job event): readers of job_events
    are woken once it has committed. The ORM says so by itself (`_note_job_changes`); a Core or SQL write of
    jobs.status must call this. Forgetting costs a reader's fallback poll in latency, never an event."""
    session.info[_JOB_EVENTS] = True


def _note_changes(session: Session, context: Any, instances: Any) -> None:
    _note_user_changes(session)
    _note_job_changes(session)


def _note_user_changes(session: Session) -> None:
    """The users this flush changes: once the transaction ends, this process's copies of them are dropped
    (core.local_users), so a request here never sees a user as they were before its own process changed them."""
    changed = [obj.id for obj in (*session.dirty, *session.deleted) if isinstance(obj, User)]
    if changed:
        session.info.setdefault(_USERS_CHANGED, set()).update(changed)


def _note_job_changes(session: Session) -> None:
    if session.info.get(_JOB_EVENTS):
        return
    for obj in session.new:
        if isinstance(obj, Job):
            session.info[_JOB_EVENTS] = True
            return
    for obj in session.dirty:
        if isinstance(obj, Job) and inspect(obj).attrs.status.history.has_changes():
            session.info[_JOB_EVENTS] = True
            return


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No pre-ping: it costs a round trip per checkout. A connection that a restarted server dropped fails its
    # next statement with OperationalError (503 at the API, TransientError/retry in a worker, nothing written),
    # and SQLAlchemy then invalidates every pooled connection older than the failure, so each process sees at
    # most one such failure per restart. Recycling bounds how long an idle connection is trusted.
    parsed = make_url(url)
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    threshold = parsed.query.get("prepare_threshold")
    if threshold is not None:
        # Behind PgBouncer in transaction mode before 1.21, server-side prepared statements must be off:
        # `?prepare_threshold=none` (psycopg prepares a statement after 5 runs by default).
        value = threshold if isinstance(threshold, str) else threshold[0]
        connect_args["prepare_threshold"] = None if value.lower() in ("none", "off", "") else int(value)
        parsed = parsed.difference_update_query(["prepare_threshold"])
    return create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_timeout=10,
        connect_args=connect_args,
    )


class Database:
    """Holds the engine and hands out transactions; the unit of work of every core service."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Autocommit: a single statement needs no BEGIN and COMMIT round trips around it (PostgreSQL only;
        # SQLite serialises writers with BEGIN IMMEDIATE, and its round trips cost nothing).
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT") if self.is_postgres else None
        self._single = sessionmaker(self._autocommit or self.engine, expire_on_commit=False)
        event.listen(self._sessions, "before_flush", _note_changes)
        self._by_key: dict[type, Any] = {}
        self.publisher: Publisher | None = None
        # Rung after a commit that wrote job events (a Doorbell's ring); None: readers of job_events poll.
        self.waker: Callable[[], None] | None = None
        # Told, after a transaction ends, the ids of the users it changed through the ORM (every change to users
        # is made that way): the process's copy of users drops them (core.local_users).
        self.users_changed: Callable[[set[str]], None] | None = None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back when it raises (unless it raises `Recorded`).
        The outbox rows it wrote are handed to the publisher after the commit; a rollback publishes nothing."""
        session = self._sessions()
        failure: Exception | None = None
        try:
            with _outage_is_503(), session.begin():
                try:
                    yield session
                except Recorded as recorded:
                    failure = recorded.error
                insert_queued(session)
            written = _committed_messages(session)
            events = session.info.pop(_JOB_EVENTS, False)
        finally:
            changed_users = session.info.pop(_USERS_CHANGED, None)
            session.close()
            if changed_users and self.users_changed is not None:
                self.users_changed(changed_users)  # committed or not: a copy dropped costs one read again
        if written:
            self._publish(written)
        if events and self.waker is not None:
            self.waker()
        if failure is not None:
            raise failure

    @contextmanager
    def recording_failure(self, record: Callable[[Session], None]) -> Iterator[None]:
        """`Recorded` for work done outside any transaction (OCR, rendering): if the block raises, `record` writes
        the failure in a transaction of its own, and then the error goes on to the caller."""
        try:
            yield
        except Exception as exc:
            with self.transaction() as s:
                record(s)
                raise Recorded(exc) from None

    def _publish(self, messages: list[Outgoing]) -> None:
        if self.publisher is None:
            return  # the outbox relay sends them
        try:
            self.publisher(self, messages)
        except Exception as exc:  # committed is committed: the relay sends what the broker did not take
            log.warning("publishing after commit failed (%s: %s); the outbox relay will send it",
                        type(exc).__name__, exc)

    @contextmanager
    def single(self) -> Iterator[Session]:
        """For exactly one statement (a look-up by key, a DELETE by ids): it runs in autocommit on PostgreSQL,
        so it sees committed data and its effect is durable when it returns, without a transaction around it."""
        if self._autocommit is None:
            with self.transaction() as s:
                yield s
            return
        session = self._single()
        try:
            with _outage_is_503():
                yield session
        finally:
            session.close()

    @contextmanager
    def statement(self) -> Iterator[Connection]:
        """Like single(), on a Core connection: no ORM session to build for a statement that needs none."""
        if self._autocommit is None:
            with self.transaction() as s:
                yield s.connection()
            return
        with _outage_is_503(), self._autocommit.connect() as conn:
            yield conn

    def get(self, model: type[T], key: Any) -> T | None:
        """One row by primary key, in one statement, as a detached instance with every column loaded. Built from a
        Core row rather than through a Session."""
        row = self.row(model, key)
        return None if row is None else detached(model, row)

    def row(self, model: type, key: Any) -> Row[Any] | None:
        """The Core row of `columns_of(model)` with this primary key (what `detached` makes an instance of)."""
        query = self._by_key.get(model)
        if query is None:
            mapper: Any = inspect(model)
            [column] = mapper.primary_key
            query = self._by_key[model] = select(*columns_of(model)).where(column == bindparam("key"))
        with self.statement() as conn:
            return conn.execute(query, {"key": key}).first()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _committed_messages(session: Session) -> list[Outgoing]:
    """The rows this transaction wrote and committed: an ORM row written in a savepoint that rolled back is gone.
    (Queued inserts are made, and their rows registered, at the end of the savepoint that queued them.)"""
    written = session.info.pop(_WRITTEN, ())
    return [m if isinstance(m, Outgoing) else outgoing(m) for m in written
            if isinstance(m, Outgoing) or inspect(m).persistent]


@contextmanager
def _outage_is_503() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if _is_outage(exc):
            raise DependencyUnavailable("The database is unavailable.", code="database_unavailable") from exc
        raise
    except PoolTimeout as exc:  # every pooled connection is waiting on a server that does not answer
        raise DependencyUnavailable("The database is not answering.", code="database_unavailable") from exc


def _is_outage(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower() if exc.orig else ""
    return any(
        s in message
        for s in (
            "connection refused",
            "could not connect",
            "server closed",
            "terminating connection",
            "connection timeout",
            "timeout expired",
            "no such host",
            "connection is lost",
            "connection is closed",
            "connection failed",
            "the database system is",  # starting up, shutting down, in recovery mode
            "database is locked",
        )
    ) or bool(getattr(exc, "connection_invalidated", False))
