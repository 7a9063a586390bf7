"""Two beat processes and two workers against real PostgreSQL and Redis: a standing order due today, a reminder
due in a few seconds and a loan instalment due today (and the reminder of the next) are each acted on exactly once,
however many ticks the beats fire."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.stack import ADMIN, Client

pytestmark = pytest.mark.e2e
RUN_SECONDS = 20


def _beat(stack, name: str, tmp_path, *scheduler: str) -> None:
    """A beat of its own, with its own schedule file (two beats must not share one)."""
    stack._spawn(
        name,
        [
            "-m",
            "celery",
            "-A",
            "tasks",
            "beat",
            "-s",
            str(tmp_path / f"{name}-schedule"),
            "--loglevel",
            "INFO",
            *scheduler,
        ],
    )


def _counts(url: str, user_id: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            one = lambda sql: int(conn.execute(text(sql), {"user": user_id}).scalar_one())  # noqa: E731
            return {
                "transfers": one("SELECT count(*) FROM transfers WHERE requested_by = :user"),
                "order_occurrences": one("SELECT count(*) FROM standing_order_occurrences"),
                "reminder_occurrences": one("SELECT count(*) FROM reminder_occurrences"),
                "reminders_sent": one(
                    "SELECT count(*) FROM notifications WHERE user_id = :user AND template = 'reminder'"
                ),
                "receipts": one(
                    "SELECT count(*) FROM notifications WHERE user_id = :user AND template = 'transfer_posted'"
                ),
            }
    finally:
        engine.dispose()


def test_two_beats_act_on_each_occurrence_once(e2e_env, stack_factory, tmp_path):
    env = {**e2e_env, "BANKQ_SCHEDULE_TICK_SECONDS": "1", "BANKQ_LOANS_TICK_SECONDS": "1"}
    stack = stack_factory(env)
    client = Client(stack.start_api())
    stack.start_worker("worker", concurrency=2)
    stack.start_worker("worker-2", queues="default,transfers", concurrency=2)
    admin = client.login(*ADMIN)
    user_id, token = client.customer("ada")
    _, payee = client.customer("bob")
    source, destination = client.account(token), client.account(payee)
    deposit = client.call(
        "POST", "/deposits", admin, "fund-ada", json={"account_id": source, "amount": "100.00", "currency": "EUR"}
    )
    assert client.wait_job(admin, deposit.json()["id"])["status"] == "succeeded"

    first_day = datetime.now(UTC).date()
    order = client.call(
        "POST",
        "/standing-orders",
        token,
        json={
            "source_account_id": source,
            "destination_account_id": destination,
            "amount": "10.00",
            "currency": "EUR",
            "frequency": "daily",
            "start_date": first_day.isoformat(),
        },
    )
    assert order.status_code == 201, order.text
    remind_at = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    reminder = client.call(
        "POST", "/reminders", token, json={"message": "Rent", "remind_at": remind_at, "channel": "in_app"}
    )
    assert reminder.status_code == 201, reminder.text

    loan_id, borrower, borrower_account = _loan_with_an_instalment_due_today(client, admin, env["DATABASE_URL"])

    # The real stack's beat takes RedBeat's lock; the second one here ignores locks altogether (the plain file
    # scheduler), as a misconfigured or partitioned beat would, so both really tick and only the database guards.
    _beat(stack, "beat-1", tmp_path)
    _beat(stack, "beat-2", tmp_path, "--scheduler", "celery.beat:PersistentScheduler")
    started = time.monotonic()
    time.sleep(RUN_SECONDS)
    days = len({first_day, datetime.now(UTC).date()})  # a run across midnight (UTC) has a second due date

    for name in ("beat-1", "beat-2"):
        assert stack.procs[name].poll() is None, stack.log(name)[-2000:]
        assert "schedules.run_due_standing_orders" in stack.log(name), stack.log(name)[-2000:]
        assert "loans.service" in stack.log(name), stack.log(name)[-2000:]
    counts = _counts(env["DATABASE_URL"], user_id)
    assert counts == {
        "transfers": days,
        "order_occurrences": days,
        "reminder_occurrences": 1,
        "reminders_sent": 1,
        "receipts": days,
    }, (counts, stack.log("worker")[-3000:])
    assert client.balance(token, source) == f"{100 - 10 * days}.00"
    assert client.balance(payee, destination) == f"{10 * days}.00"
    shown = client.call("GET", f"/standing-orders/{order.json()['id']}", token).json()
    assert [o["status"] for o in shown["occurrences"]] == ["posted"] * days
    [listed] = client.call("GET", "/reminders", token).json()["items"]
    assert listed["status"] == "done"
    [sent] = [n for n in client.call("GET", "/notifications", token).json()["items"] if n["template"] == "reminder"]
    assert sent["status"] == "sent"
    # The loan: the instalment due today collected once, the next one (due tomorrow) reminded once.
    loan = client.call("GET", f"/loans/{loan_id}", borrower).json()
    assert [i["status"] for i in client.call("GET", f"/loans/{loan_id}/schedule", borrower).json()["items"]] == [
        "paid", "due", "due"]
    assert _loan_counts(env["DATABASE_URL"], loan["user_id"]) == {"repayments": 1, "reminders": 1}
    assert client.balance(borrower, borrower_account) == "159.98"  # 500.00 paid out, 340.02 collected
    assert loan["status"] == "active"
    ledger = client.call("GET", "/admin/ledger/check", admin).json()
    assert ledger["ok"], ledger
    assert time.monotonic() - started < 40


def _loan_with_an_instalment_due_today(client: Client, admin: str, url: str) -> tuple[str, str, str]:
    """A paid-out loan of 1000.00 over 3 months, moved back in time as if paid out 30 days ago with no interest
    accrued since: its first instalment is due today and its second tomorrow (in the reminder window)."""
    _, borrower = client.customer("cleo")
    account = client.account(borrower)
    product = client.call("POST", "/loan-products", admin, json={
        "name": "Two-beat loan", "currency": "EUR", "annual_rate": "0.12", "min_amount": "100.00",
        "max_amount": "5000.00", "min_term_months": 3, "max_term_months": 24, "late_fee": "10.00"})
    assert product.status_code == 201, product.text
    applied = client.call("POST", "/loans", borrower, json={
        "product_id": product.json()["id"], "amount": "1000.00", "term_months": 3, "account_id": account})
    assert applied.status_code == 201, applied.text
    loan_id = applied.json()["id"]
    approved = client.call("POST", f"/loans/{loan_id}/approve", admin, f"approve-{loan_id}")
    assert client.wait_job(admin, approved.json()["id"])["status"] == "succeeded"
    spent = client.call("POST", "/withdrawals", admin, f"spend-{loan_id}",
                        json={"account_id": account, "amount": "500.00", "currency": "EUR"})
    assert client.wait_job(admin, spent.json()["id"])["status"] == "succeeded"
    today = datetime.now(UTC).date()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE loans SET disbursed_on = :start, accrued_through = :start WHERE id = :loan"),
                         {"start": today - timedelta(days=30), "loan": loan_id})
            for number, due in ((1, today), (2, today + timedelta(days=1)), (3, today + timedelta(days=40))):
                conn.execute(text("UPDATE loan_instalments SET due_date = :due WHERE loan_id = :loan AND number = :n"),
                             {"due": due, "loan": loan_id, "n": number})
    finally:
        engine.dispose()
    return loan_id, borrower, account


def _loan_counts(url: str, user_id: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            one = lambda sql: int(conn.execute(text(sql), {"user": user_id}).scalar_one())  # noqa: E731
            return {
                "repayments": one("SELECT count(*) FROM transfers WHERE kind = 'loan_repayment'"),
                "reminders": one(
                    "SELECT count(*) FROM notifications WHERE user_id = :user AND template = 'reminder'"),
            }
    finally:
        engine.dispose()


def test_a_second_beat_waits_for_the_lock(e2e_env, stack_factory, tmp_path):
    stack = stack_factory({**e2e_env, "BANKQ_BEAT_LOCK_SECONDS": "10"})
    _beat(stack, "beat-1", tmp_path)
    deadline = time.monotonic() + 30
    while "Sending due task" not in stack.log("beat-1") and time.monotonic() < deadline:
        time.sleep(0.2)
    _beat(stack, "beat-2", tmp_path)
    time.sleep(6)
    assert "Sending due task" in stack.log("beat-1")
    assert stack.procs["beat-2"].poll() is None and "Sending due task" not in stack.log("beat-2")
    stack.kill("beat-1")  # the holder dies: the lock expires and the waiting beat takes over
    killed = time.monotonic()
    deadline = killed + 60
    while "Sending due task" not in stack.log("beat-2") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "Sending due task" in stack.log("beat-2"), stack.log("beat-2")[-2000:]
    assert time.monotonic() - killed < 10 + 5 + 10, "took over long after the lock time (BANKQ_BEAT_LOCK_SECONDS)"
