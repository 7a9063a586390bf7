"""Migration 0027 on PostgreSQL: the webhook cursor, kept in (writing transaction, event id) order before it, moves
back to just before the first event that order had not reached, so no event loses its deliveries; job_events loses
its transaction id column."""

from __future__ import annotations

import psycopg
from alembic import command

from core.setup import alembic_config
from tests import support


def test_the_cursor_moves_back_to_the_first_event_the_old_order_had_not_reached(pg_server) -> None:
    url = support.create_database(pg_server.url, prefix="bankq_migration")
    try:
        command.upgrade(alembic_config(url), "0026")
        with psycopg.connect(support.libpq(url)) as conn:
            # Events 1..4 written by transactions 100, 300, 200, 400: the old cursor stood at (200, 3), past 1 and
            # 3 only; 2 (transaction 300) was still to come in that order.
            for event_id, tx in ((1, 100), (2, 300), (3, 200), (4, 400)):
                conn.execute("INSERT INTO job_events (id, job_id, user_id, status, job, at, tx) "
                             "VALUES (%s, 'j', 'u1', 'succeeded', '{}', now(), %s)", (event_id, tx))
            conn.execute("INSERT INTO webhook_cursors (name, last_tx, last_event_id, updated_at) "
                         "VALUES ('job_events', 200, 3, now())")
        command.upgrade(alembic_config(url), "0027")
        with psycopg.connect(support.libpq(url)) as conn:
            assert conn.execute("SELECT last_event_id FROM webhook_cursors").fetchone() == (1,)
            columns = {r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'job_events'")}
            assert "tx" not in columns
        command.downgrade(alembic_config(url), "0026")
        command.upgrade(alembic_config(url), "head")
    finally:
        support.drop_database(pg_server.url, url)


def test_a_cursor_with_nothing_left_behind_stays_where_it_is(pg_server) -> None:
    url = support.create_database(pg_server.url, prefix="bankq_migration")
    try:
        command.upgrade(alembic_config(url), "0026")
        with psycopg.connect(support.libpq(url)) as conn:
            for event_id, tx in ((1, 100), (2, 200)):
                conn.execute("INSERT INTO job_events (id, job_id, user_id, status, job, at, tx) "
                             "VALUES (%s, 'j', 'u1', 'succeeded', '{}', now(), %s)", (event_id, tx))
            conn.execute("INSERT INTO webhook_cursors (name, last_tx, last_event_id, updated_at) "
                         "VALUES ('job_events', 200, 2, now())")
        command.upgrade(alembic_config(url), "0027")
        with psycopg.connect(support.libpq(url)) as conn:
            assert conn.execute("SELECT last_event_id FROM webhook_cursors").fetchone() == (2,)
    finally:
        support.drop_database(pg_server.url, url)
