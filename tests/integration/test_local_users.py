"""An API process's copy of users (core.local_users): answered from memory, and never wrong for longer than a second,
whoever changed the user and however long their transaction ran."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest

from core.bank import Bank
from core.local_users import LocalUsers, StoredUsers
from core.models import User
from core.settings import Settings
from core.setup import prepare
from core.users import update_profile
from tests import support
from tests.support import make_user


def _copy(bank: Bank, **options: float) -> LocalUsers:
    users = LocalUsers(bank.db, **options)
    users.refresher.fresh()  # starts its thread
    _wait(lambda: users.refresher.fresh(), "the first refresh")
    return users


def _wait(condition: Callable[[], bool], what: str, within: float = 1.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within, f"{what}: not within {within} s"
        time.sleep(0.01)
    return time.monotonic() - started


def _elsewhere(bank: Bank) -> psycopg.Connection:
    """Another process's connection: what it changes, this process's unit of work knows nothing of."""
    return psycopg.connect(support.libpq(bank.settings.database_url), autocommit=True)


def test_the_trigger_stamps_every_written_row_with_its_transaction(bank: Bank) -> None:
    user = make_user(bank)
    with _elsewhere(bank) as conn:
        inserted = conn.execute("SELECT changed_xid FROM users WHERE id = %s", (user.id,)).fetchone()
        with conn.transaction():
            xid = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
            conn.execute("UPDATE users SET phone = '+4930123' WHERE id = %s", (user.id,))
        updated = conn.execute("SELECT changed_xid FROM users WHERE id = %s", (user.id,)).fetchone()
    assert inserted is not None and inserted[0] is not None
    assert xid is not None and updated == (xid[0],) and updated[0] > inserted[0]


def test_a_user_is_read_once_then_answered_from_memory_as_a_new_instance_each_time(bank: Bank) -> None:
    user = make_user(bank, full_name="Ines Lopes")
    users = _copy(bank)
    first = users.get(user.id)
    reads = users.reads
    again = [users.get(user.id) for _ in range(50)]
    assert users.reads == reads  # no round trip
    assert first is not None and all(u is not None and u is not first for u in again)
    seen = {(u.id, u.full_name, u.status, u.token_version) for u in again if u}
    assert seen == {(user.id, "Ines Lopes", "active", 0)}
    assert users.get("no-such-user") is None


def test_a_change_made_by_another_process_is_seen_within_a_second(bank: Bank) -> None:
    user = make_user(bank)
    users = _copy(bank)
    assert users.get(user.id).status == "active"  # type: ignore[union-attr]
    with _elsewhere(bank) as conn:
        conn.execute("UPDATE users SET status = 'suspended', token_version = 1 WHERE id = %s", (user.id,))
    _wait(lambda: users.get(user.id).status == "suspended", "the suspension")  # type: ignore[union-attr]
    assert users.get(user.id).token_version == 1  # type: ignore[union-attr]


def test_a_change_whose_transaction_outlived_several_refreshes_is_still_seen(bank: Bank) -> None:
    """The transaction takes its id, then the copy refreshes for longer than any clock-based overlap would cover,
    then it commits: the horizon (the oldest transaction running at the last read) still brings it in."""
    user = make_user(bank)
    users = _copy(bank, refresh_seconds=0.05)
    assert users.get(user.id).kyc_status == "verified"  # type: ignore[union-attr]
    with _elsewhere(bank) as conn, conn.transaction():
        conn.execute("UPDATE users SET kyc_status = 'rejected' WHERE id = %s", (user.id,))
        time.sleep(1.5)  # some thirty refreshes pass while it is open
        assert users.get(user.id).kyc_status == "verified"  # type: ignore[union-attr]  # not committed yet
    _wait(lambda: users.get(user.id).kyc_status == "rejected", "the late commit")  # type: ignore[union-attr]


def test_this_processs_own_change_is_seen_at_once(bank: Bank) -> None:
    user = make_user(bank, full_name="Old Name")
    users = _copy(bank, refresh_seconds=60)  # no refresh will come to help
    bank.db.users_changed = users.forget
    try:
        assert users.get(user.id).full_name == "Old Name"  # type: ignore[union-attr]
        update_profile(bank.db, user.id, {"full_name": "New Name"})
        assert users.get(user.id).full_name == "New Name"  # type: ignore[union-attr]
    finally:
        bank.db.users_changed = bank.users.forget


def test_a_read_that_raced_a_refresh_is_not_kept(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request read the user just before another process's change committed, and the refresh that dropped the
    user ended before the request put its (now old) row in the copy: the row must not stay there."""
    user = make_user(bank)
    users = _copy(bank, refresh_seconds=60)  # refreshes only when the test says
    read = bank.db.row

    def read_then_change_and_refresh(model: type, key: str):  # type: ignore[no-untyped-def]
        row = read(model, key)
        with _elsewhere(bank) as conn:
            conn.execute("UPDATE users SET status = 'closed' WHERE id = %s", (user.id,))
        assert users.refresher.run_once()
        return row

    with monkeypatch.context() as patch:
        patch.setattr(bank.db, "row", read_then_change_and_refresh)
        assert users.get(user.id).status == "active"  # type: ignore[union-attr]  # what the request read
    assert users.get(user.id).status == "closed"  # type: ignore[union-attr]  # read again, not the old row


def test_a_read_that_raced_this_processs_own_change_is_not_kept(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    user = make_user(bank, full_name="Before")
    users = _copy(bank, refresh_seconds=60)
    monkeypatch.setattr(bank.db, "users_changed", users.forget)
    read = bank.db.row

    def read_then_change_here(model: type, key: str):  # type: ignore[no-untyped-def]
        row = read(model, key)
        update_profile(bank.db, user.id, {"full_name": "After"})  # another request of this process, committing
        return row

    with monkeypatch.context() as patch:
        patch.setattr(bank.db, "row", read_then_change_here)
        assert users.get(user.id).full_name == "Before"  # type: ignore[union-attr]
    assert users.get(user.id).full_name == "After"  # type: ignore[union-attr]
    reads = users.reads
    assert users.get(user.id).full_name == "After" and users.reads == reads  # type: ignore[union-attr]  # kept now


def test_a_copy_that_cannot_refresh_is_not_trusted(bank: Bank) -> None:
    user = make_user(bank)
    users = _copy(bank, max_age_seconds=0.3)
    users.get(user.id)
    users.refresher.max_age = 0.0  # as if the thread had stopped reading: the copy is too old from now on
    reads = users.reads
    with _elsewhere(bank) as conn:
        conn.execute("UPDATE users SET token_version = 7 WHERE id = %s", (user.id,))
    assert users.get(user.id).token_version == 7  # type: ignore[union-attr]  # asked the database
    assert users.reads == reads + 1


def test_the_api_answers_a_token_from_the_copy_and_refuses_it_once_its_user_is_suspended(
    bank: Bank, client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process's copy, refreshed when the test says (so no refresh lands in the middle of the count) and trusted
    # however long the machine takes: what is counted is that requests are answered from it, not read.
    users = _copy(bank, refresh_seconds=3600, max_age_seconds=3600)
    monkeypatch.setattr(bank, "users", users)
    monkeypatch.setattr(bank.db, "users_changed", users.forget)
    customer = make_user(bank)
    headers = support.auth_headers(client, customer)
    assert users.refresher.run_once()  # whatever the log-in changed has been seen
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200  # read, and kept
    reads = users.reads
    for _ in range(20):
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert users.reads == reads
    with _elsewhere(bank) as conn:
        conn.execute("UPDATE users SET status = 'suspended' WHERE id = %s", (customer.id,))
    assert users.refresher.run_once()  # the thread's next read (within 0.25 s; until then the copy may still admit)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_on_sqlite_every_look_up_reads_the_file(tmp_path) -> None:
    embedded = Bank(Settings.from_env({"BANKQ_DATA_DIR": str(tmp_path), "BANKQ_SECRET_KEY": "k" * 64}))
    prepare(embedded)
    try:
        assert isinstance(embedded.users, StoredUsers)
        user = make_user(embedded)
        found = embedded.users.get(user.id)
        assert isinstance(found, User) and found.username == user.username and found.changed_xid is None
    finally:
        embedded.db.dispose()


@pytest.fixture
def copy_behind(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> LocalUsers:
    """The API's copy of users, trusted but never refreshed, and blind to this process's own writes: what another
    API process sees in the moment after a change made elsewhere."""
    users = _copy(bank, refresh_seconds=3600, max_age_seconds=3600)
    monkeypatch.setattr(bank, "users", users)
    monkeypatch.setattr(bank.db, "users_changed", None)
    return users


def test_an_identity_verified_a_moment_ago_elsewhere_may_send_money_at_once(bank: Bank, client, copy_behind) -> None:
    customer = make_user(bank, kyc="unverified")
    source = support.open_account(bank, customer, "EUR", 10_00)
    destination = support.open_account(bank, make_user(bank))
    headers = support.auth_headers(client, customer)
    assert client.get("/api/v1/auth/me", headers=headers).get_json()["kyc_status"] == "unverified"  # in the copy
    body = {"source_account_id": source, "destination_account_id": destination, "amount": "1.00", "currency": "EUR"}
    refused = client.post("/api/v1/transfers", json=body, headers={**headers, "Idempotency-Key": "before"})
    assert (refused.status_code, refused.get_json()["code"]) == (403, "kyc_required")
    with _elsewhere(bank) as conn:
        conn.execute("UPDATE users SET kyc_status = 'verified' WHERE id = %s", (customer.id,))
    accepted = client.post("/api/v1/transfers", json=body, headers={**headers, "Idempotency-Key": "after"})
    assert accepted.status_code == 202, accepted.get_json()


def test_a_token_issued_after_a_password_change_elsewhere_works_at_once_and_the_old_one_does_not(
    bank: Bank, client, copy_behind
) -> None:
    customer = make_user(bank)
    old = support.auth_headers(client, customer)
    assert client.get("/api/v1/auth/me", headers=old).status_code == 200  # the user is in the copy, version 0
    with _elsewhere(bank) as conn:
        conn.execute("UPDATE users SET token_version = token_version + 1 WHERE id = %s", (customer.id,))
    new = support.auth_headers(client, customer)  # issued with version 1
    assert client.get("/api/v1/auth/me", headers=new).status_code == 200
    assert client.get("/api/v1/auth/me", headers=old).status_code == 401


def test_a_customer_promoted_a_moment_ago_elsewhere_passes_the_staff_guard_at_once(
    bank: Bank, client, copy_behind
) -> None:
    promoted = make_user(bank)
    headers = support.auth_headers(client, promoted)
    assert client.get("/api/v1/customers", headers=headers).status_code == 403  # a customer, in the copy
    with _elsewhere(bank) as conn:
        conn.execute("UPDATE users SET role = 'teller' WHERE id = %s", (promoted.id,))
    assert client.get("/api/v1/customers", headers=headers).status_code == 200


def test_the_callers_own_profile_is_shown_as_stored_even_before_the_copy_refreshes(
    bank: Bank, client, copy_behind
) -> None:
    customer = make_user(bank, full_name="Before Edit")
    headers = support.auth_headers(client, customer)
    assert client.get("/api/v1/auth/me", headers=headers).get_json()["full_name"] == "Before Edit"
    with _elsewhere(bank) as conn:
        conn.execute("UPDATE users SET full_name = 'After Edit' WHERE id = %s", (customer.id,))
    assert client.get("/api/v1/auth/me", headers=headers).get_json()["full_name"] == "After Edit"
