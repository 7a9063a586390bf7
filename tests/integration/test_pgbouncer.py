"""bankq behind PgBouncer in transaction mode, the pooling the README's scaling section recommends: many clients
share 4 server connections, each transaction on whichever is free. Accepting (advisory lock, queued inserts),
posting many jobs a transaction and the ledger guards work there with `?prepare_threshold=none`; a duplicate key
still makes one job."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from core.bank import Bank
from core.ledger import check_ledger
from core.models import Job
from core.settings import Settings
from core.setup import ensure_cash_accounts
from core.transfers import TransferRequest, post_transfer_jobs_many, request_transfer
from tests import servers
from tests.support import make_user, open_account, run_concurrently


@pytest.fixture
def pooled_bank(bank: Bank, tmp_path):  # type: ignore[no-untyped-def]
    url = make_url(bank.settings.database_url)
    bouncer = servers.start_pgbouncer(url.port or 5432)
    pooled = url.set(port=bouncer.port).update_query_dict({"prepare_threshold": "none"})
    env = {"DATABASE_URL": pooled.render_as_string(hide_password=False), "BANKQ_DATA_DIR": str(tmp_path),
           "BANKQ_SECRET_KEY": bank.settings.secret_key, "BANKQ_REQUIRE_KYC": "false"}
    through = Bank(Settings.from_env(env), pool_size=8)
    yield through
    through.db.dispose()
    bouncer.stop()


def test_accepting_and_posting_through_pgbouncer_in_transaction_mode(pooled_bank):
    ensure_cash_accounts(pooled_bank.db)
    alice, bob = make_user(pooled_bank), make_user(pooled_bank)
    source, destination = open_account(pooled_bank, alice, "EUR", 1_000_00), open_account(pooled_bank, bob, "EUR")
    numbers = itertools.count()

    def accept(key: str | None = None) -> str:
        n = next(numbers)
        cmd = TransferRequest(source_account_id=source, destination_account_id=destination, amount="1.00",
                              currency="EUR")
        return request_transfer(pooled_bank, alice, cmd, idempotency_key=key or uuid.uuid4().hex,
                                body={"n": 0 if key else n}).body["id"]

    ids = run_concurrently(lambda: [accept() for _ in range(10)], n=8)
    ids = [job for batch in ids for job in batch]
    same = run_concurrently(lambda: _same_key(accept), n=6)
    assert len({job for job in same if job}) == 1  # one job for one key, however the 6 requests landed
    report = post_transfer_jobs_many(pooled_bank.db, [*ids, *{j for j in same if j}], batch_size=25)
    assert len(report.posted) == 81 and not report.failed
    with pooled_bank.db.transaction() as s:
        succeeded = select(func.count()).select_from(Job).where(Job.kind == "transfer", Job.status == "succeeded")
        assert s.scalar(succeeded) == 81
    assert check_ledger(pooled_bank.db)["ok"]


def _same_key(accept):  # type: ignore[no-untyped-def]
    from core.errors import Conflict

    try:
        return accept("one-key")
    except Conflict:  # idempotency_key_in_use while the first is being accepted
        return None
