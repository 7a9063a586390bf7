"""A statement page on a big ledger: GET /api/v1/accounts/{id}/entries (50 rows) for an account with
BENCH_ACCOUNT_ENTRIES entries in a ledger of BENCH_LEDGER_ENTRIES, the first page and pages deep in the account's
history (by the cursor the API hands out), from a few connections back to back.

The ledger is seeded with INSERT ... SELECT FROM generate_series in PostgreSQL itself, not through the API, in
chunks, with triggers and foreign-key checks off for the session (session_replication_role = replica, which needs a
superuser: the bench's throwaway server has one). Two entries per posting, amounts summing to zero; the seeded
postings' ids ascend, so the indexes grow at their right edge instead of taking random inserts."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.bankq_http import Bankq, Window, drive
from bench.bankq_stack import libpq_connect
from bench.config import BenchConfig
from bench.stack import Stack, phase
from core.pagination import encode_cursor

CHUNK = 500_000  # postings per INSERT
COUNTERPARTIES = 200
PAGE = 50

_TRANSFERS = """
INSERT INTO transfers (id, job_id, kind, source_account_id, destination_account_id, amount, currency, description,
                       status, requested_by, created_at, posted_at)
SELECT 'seed-' || lpad(g::text, 12, '0'), 'seed-job-' || lpad(g::text, 12, '0'), 'transfer',
       (%(others)s::text[])[1 + g %% %(k)s::bigint],
       CASE WHEN g <= %(mine)s THEN %(account)s ELSE (%(others)s::text[])[1 + (g + 1) %% %(k)s::bigint] END,
       100, 'EUR', 'seed', 'posted', %(user)s, now(), now()
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
"""
_ENTRIES = """
INSERT INTO entries (transfer_id, account_id, currency, amount, balance_after, description, posted_at)
SELECT 'seed-' || lpad(g::text, 12, '0'), side.account, 'EUR', side.amount, 0, 'seed', now()
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g,
LATERAL (VALUES ((%(others)s::text[])[1 + g %% %(k)s::bigint], -100::bigint),
                (CASE WHEN g <= %(mine)s THEN %(account)s ELSE (%(others)s::text[])[1 + (g + 1) %% %(k)s::bigint] END,
                 100::bigint)) AS side(account, amount)
"""


@dataclass(frozen=True)
class StatementResult:
    ledger_entries: int
    account_entries: int
    seed_seconds: float
    window: Window


def run_statement_page(stack: Stack, config: BenchConfig, bankq: Bankq) -> StatementResult:
    owner = bankq.customers[0]
    postings = max(1, config.ledger_entries // 2)
    mine = min(config.account_entries, postings)
    with phase(f"  seeding {2 * postings:,} entries, {mine:,} of them on one account"):
        seeded = time.monotonic()
        others = _counterparties(bankq.database_url)
        with libpq_connect(bankq.database_url) as conn:
            conn.execute("SET session_replication_role = replica")
            for lo in range(1, postings + 1, CHUNK):
                values = {"others": others, "k": len(others), "mine": mine, "account": owner.account_id,
                          "user": owner.user.id, "lo": lo, "hi": min(postings, lo + CHUNK - 1)}
                conn.execute(_TRANSFERS, values)
                conn.execute(_ENTRIES, values)
            # What autovacuum does to a live ledger in its own time: hint bits set, the visibility map and the
            # statistics current. Done here so that it neither runs during the window nor leaves the window's first
            # reads to write every freshly seeded page.
            conn.execute("VACUUM (ANALYZE) entries")
            conn.execute("VACUUM (ANALYZE) transfers")
            ids = [row[0] for row in conn.execute(
                "SELECT id FROM entries WHERE account_id = %s ORDER BY id DESC", (owner.account_id,))]
        seed_seconds = time.monotonic() - seeded
    base = f"/api/v1/accounts/{owner.account_id}/entries?limit={PAGE}"
    # The first page, and pages a tenth, half and nine tenths of the way back, as the cursor names them.
    paths = [base] + [f"{base}&cursor={encode_cursor(ids[int(len(ids) * f)])}" for f in (0.1, 0.5, 0.9)
                      if int(len(ids) * f) < len(ids)]
    with phase(f"  GET a {PAGE}-row page, {config.statement_seconds:.0f} s"):
        window = drive(stack, bankq, bodies=[[]], connections=4, warmup=1.0, seconds=config.statement_seconds,
                       run="statement", paths=[paths])
    return StatementResult(2 * postings, len(ids), seed_seconds, window)


def _counterparties(database_url: str) -> list[str]:
    """COUNTERPARTIES accounts of another customer, for the other side of every posting."""
    with libpq_connect(database_url) as conn:
        conn.execute("INSERT INTO users (id, username, email, full_name, role, kyc_status, status, failed_logins, "
                     "token_version, time_zone, monthly_statements, created_at, updated_at) "
                     "VALUES ('bench-counterparty', 'counterparty', 'counterparty@example.com', 'Counterparty', "
                     "'customer', 'verified', 'active', 0, 0, 'UTC', false, now(), now())")
        conn.execute("INSERT INTO accounts (id, number, owner_id, currency, type, kind, status, balance, created_at, "
                     "updated_at) SELECT 'bench-acct-' || g, 'BENCH' || lpad(g::text, 10, '0'), 'bench-counterparty', "
                     "'EUR', 'checking', 'customer', 'active', 0, now(), now() FROM generate_series(1, %s) g",
                     (COUNTERPARTIES,))
    return [f"bench-acct-{g}" for g in range(1, COUNTERPARTIES + 1)]
