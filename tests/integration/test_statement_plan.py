"""A statement page on real PostgreSQL reads the account's own index, whatever the rest of the ledger holds.

A dormant account (all of its entries older than most of the ledger) is where `ORDER BY id DESC LIMIT n` with
`account_id = …` goes wrong: PostgreSQL, assuming the account's rows are spread evenly, walks the primary key down
from the newest entry of the whole ledger and filters, reading everything newer than the account's last entry."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from sqlalchemy import event

from core import accounts
from tests import support
from tests.support import make_user, open_account

OLD, NEWER = 30_000, 270_000  # the account holds a tenth of the ledger, all of it older than the rest


def _seed(bank, account_id: str, count: int, description: str) -> None:
    """count entries on the account, newer than every entry so far (set-based, triggers and checks off)."""
    with psycopg.connect(support.libpq(bank.settings.database_url), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO entries (transfer_id, account_id, currency, amount, balance_after, description, posted_at) "
            "SELECT %s || g, %s, 'EUR', 1 - 2 * (g %% 2), 0, %s, now() FROM generate_series(1, %s) AS g",
            (f"seed-{description}-", account_id, description, count))
        conn.execute("VACUUM (ANALYZE) entries")


def _explain(bank, sql: str, params: Any) -> dict[str, Any]:
    with psycopg.connect(support.libpq(bank.settings.database_url)) as conn:
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).fetchone()[0]
    return (plan if isinstance(plan, list) else json.loads(plan))[0]


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in _nodes(child))]


def test_a_dormant_accounts_statement_page_reads_its_own_index(bank) -> None:
    owner, other = make_user(bank), make_user(bank)
    dormant, busy = open_account(bank, owner), open_account(bank, other)
    _seed(bank, dormant, OLD, "old")
    _seed(bank, busy, NEWER, "later")

    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM entries" in statement:
            seen.append((statement, parameters))

    engine = bank.db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        staff = make_user(bank, role="teller")
        first = accounts.statement(bank.db, staff, dormant, limit=50, cursor=None)
        second = accounts.statement(bank.db, staff, dormant, limit=50, cursor=first["next_cursor"])
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(first["items"]) == 50 and len(second["items"]) == 50
    assert {e["description"] for e in first["items"] + second["items"]} == {"old"}
    assert first["items"][0]["id"] > first["items"][-1]["id"] > second["items"][0]["id"]

    assert len(seen) == 2
    for sql, params in seen:
        plan = _explain(bank, sql, params)["Plan"]
        scans = [n for n in _nodes(plan) if "Index Name" in n]
        assert [n["Index Name"] for n in scans] == ["ix_entries_account_id_id"], json.dumps(plan)[:2000]
        read = sum(n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0) for n in scans)
        assert read <= 51, read  # the page and the one that says there is more; nothing of the rest of the ledger
