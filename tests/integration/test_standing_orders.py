"""Standing orders on real PostgreSQL: each due date becomes exactly one transfer through the API's path, posted
by the normal posting code to the ledger; failures notify once and are not retried; delete and end dates stop;
concurrent ticks and downtime double nothing. The clock is frozen and moved by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select

from core import accounts, standing_orders
from core.clock import clock
from core.ledger import check_ledger
from core.models import (
    Account,
    Entry,
    IdempotencyKey,
    Job,
    Notification,
    StandingOrder,
    StandingOrderOccurrence,
    Transfer,
)
from core.transfers import post_transfer_jobs
from tests.support import auth_headers, make_user, open_account, run_concurrently

JAN_31 = datetime(2027, 1, 31, 6, 0, tzinfo=UTC)


def _count(bank, model, *where):
    with bank.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _balance(bank, account_id):
    with bank.db.transaction() as s:
        return s.scalar(select(Account.balance).where(Account.id == account_id))


def _post_queued(bank) -> list[str]:
    """What the transfers worker does with every queued transfer job."""
    with bank.db.transaction() as s:
        queued = list(s.scalars(select(Job.id).where(Job.status == "queued", Job.task_name == "transfers.post")))
    for job_id in queued:
        post_transfer_jobs(bank.db, job_id)
    return queued


_concurrently = run_concurrently


def _order_transfers(bank):
    with bank.db.transaction() as s:
        return list(s.scalars(select(Transfer).where(Transfer.description.like("Standing order%"))))


def _setup(bank, client, balance_minor=100_00):
    user = make_user(bank)
    payee = make_user(bank)
    source = open_account(bank, user, "EUR", balance_minor)
    destination = open_account(bank, payee, "EUR")
    return user, auth_headers(client, user), source, destination


def _create(client, headers, source, destination, **fields):
    body = {
        "source_account_id": source,
        "destination_account_id": destination,
        "amount": "10.00",
        "currency": "EUR",
        "frequency": "daily",
        "start_date": clock.now().date().isoformat(),
    }
    given = {k: v for k, v in {**body, **fields}.items() if v is not None}  # None: leave the field out
    response = client.post("/api/v1/standing-orders", json=given, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_monthly_from_jan_31_pays_on_feb_28_and_mar_31(bank, client):
    clock.freeze(JAN_31)
    user, headers, source, destination = _setup(bank, client)
    order = _create(client, headers, source, destination, frequency="monthly", start_date="2027-01-31")
    assert (order["status"], order["next_date"], order["amount"]) == ("active", "2027-01-31", "10.00")

    paid_on = []
    for day in (date(2027, 1, 31), date(2027, 2, 27), date(2027, 2, 28), date(2027, 3, 30), date(2027, 3, 31)):
        clock.freeze(datetime.combine(day, JAN_31.timetz()))
        report = standing_orders.run_due_standing_orders(bank)
        if report.requested:
            paid_on.append(day)
            assert len(_post_queued(bank)) == 1  # through post_transfer_jobs, like the worker
            assert standing_orders.run_due_standing_orders(bank).settled == 1
    assert paid_on == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31)]

    assert _balance(bank, source) == 70_00 and _balance(bank, destination) == 30_00
    transfers = _order_transfers(bank)
    assert len(transfers) == 3 and {t.status for t in transfers} == {"posted"}
    assert _count(bank, Entry, Entry.transfer_id.in_([t.id for t in transfers])) == 6
    assert check_ledger(bank.db)["ok"]
    shown = client.get(f"/api/v1/standing-orders/{order['id']}", headers=headers).get_json()
    assert shown["next_date"] == "2027-04-30"
    assert [(o["date"], o["status"]) for o in shown["occurrences"]] == [
        ("2027-03-31", "posted"),
        ("2027-02-28", "posted"),
        ("2027-01-31", "posted"),
    ]
    assert all(o["transfer_id"] and o["job_id"] for o in shown["occurrences"])
    assert _count(bank, Notification, Notification.template == "transfer_posted") == 3  # a receipt each
    # The transfer went through the API's accept path: its idempotency key is the order and the date.
    assert _count(bank, IdempotencyKey, IdempotencyKey.key == f"standing-order:{order['id']}:2027-02-28") == 1


def test_concurrent_ticks_make_one_transfer_per_date(bank, client):
    clock.freeze(JAN_31)
    orders = []
    for _ in range(3):
        user, headers, source, destination = _setup(bank, client)
        for _ in range(4):
            orders.append(_create(client, headers, source, destination, amount="1.00"))
    for _day in range(3):
        reports = _concurrently(lambda: standing_orders.run_due_standing_orders(bank))
        assert sum(r.requested for r in reports) == 12
        _post_queued(bank)
        clock.advance(days=1)
    transfers = _order_transfers(bank)
    assert len(transfers) == 12 * 3 and {t.status for t in transfers} == {"posted"}
    assert _count(bank, StandingOrderOccurrence) == 36
    assert _count(bank, Entry, Entry.transfer_id.in_([t.id for t in transfers])) == 72
    with bank.db.transaction() as s:
        doubles = s.execute(
            select(StandingOrderOccurrence.order_id, StandingOrderOccurrence.occurrence_date)
            .group_by(StandingOrderOccurrence.order_id, StandingOrderOccurrence.occurrence_date)
            .having(func.count() > 1)
        ).all()
    assert doubles == []
    assert check_ledger(bank.db)["ok"]


def test_insufficient_funds_fails_once_notifies_and_is_not_retried(bank, client):
    clock.freeze(JAN_31)
    user, headers, source, destination = _setup(bank, client, balance_minor=15_00)
    order = _create(client, headers, source, destination)
    for _ in range(2):  # day 1 pays (settled by the next tick), day 2 finds 5.00 for a 10.00 order
        standing_orders.run_due_standing_orders(bank)
        _post_queued(bank)
        clock.advance(days=1)
    clock.advance(days=-1)
    report = standing_orders.run_due_standing_orders(bank)
    assert report.settled == 1 and report.requested == 0

    with bank.db.transaction() as s:
        day2 = s.scalar(
            select(StandingOrderOccurrence).where(StandingOrderOccurrence.occurrence_date == date(2027, 2, 1))
        )
        job = s.get(Job, day2.job_id)
    assert (day2.status, day2.failure_code) == ("failed", "insufficient_funds")
    assert (job.status, job.error_code, job.attempts) == ("failed", "insufficient_funds", 1)
    failed = [n for n in _notifications(bank, user) if n.template == "transfer_failed"]
    assert len(failed) == 1 and failed[0].context["failure_code"] == "insufficient_funds"
    assert failed[0].context["transfer_id"] == day2.transfer_id

    for _ in range(3):  # ticks and deliveries again: nothing is retried, nothing notified twice
        standing_orders.run_due_standing_orders(bank)
        assert _post_queued(bank) == []
        post_transfer_jobs(bank.db, job.id)
    assert len([n for n in _notifications(bank, user) if n.template == "transfer_failed"]) == 1
    assert len(_order_transfers(bank)) == 2
    assert _balance(bank, source) == 5_00

    clock.advance(days=1)  # the next occurrence is a new date, a new transfer
    assert standing_orders.run_due_standing_orders(bank).requested == 1
    assert len(_order_transfers(bank)) == 3
    shown = client.get(f"/api/v1/standing-orders/{order['id']}", headers=headers).get_json()
    assert shown["status"] == "active"


def _notifications(bank, user):
    with bank.db.transaction() as s:
        return list(s.scalars(select(Notification).where(Notification.user_id == user.id)))


def test_an_occurrence_refused_at_request_time_is_recorded_and_notified(bank, client):
    clock.freeze(JAN_31)
    user, headers, source, destination = _setup(bank, client)
    _create(client, headers, source, destination)
    accounts.set_frozen(bank.db, make_user(bank, role="teller"), source, True)
    report = standing_orders.run_due_standing_orders(bank)
    assert (report.requested, report.failed) == (0, 1)
    assert standing_orders.run_due_standing_orders(bank).failed == 0
    with bank.db.transaction() as s:
        [occurrence] = s.scalars(select(StandingOrderOccurrence))
    assert (occurrence.status, occurrence.failure_code, occurrence.job_id) == ("failed", "account_frozen", None)
    assert [n.template for n in _notifications(bank, user)] == ["transfer_failed"]
    assert _order_transfers(bank) == []


def test_delete_stops_future_occurrences(bank, client):
    clock.freeze(JAN_31)
    user, headers, source, destination = _setup(bank, client)
    order = _create(client, headers, source, destination)
    assert standing_orders.run_due_standing_orders(bank).requested == 1
    other = auth_headers(client, make_user(bank))
    assert client.delete(f"/api/v1/standing-orders/{order['id']}", headers=other).status_code == 404
    assert client.get(f"/api/v1/standing-orders/{order['id']}", headers=other).status_code == 404
    assert client.get("/api/v1/standing-orders", headers=other).get_json()["items"] == []
    assert client.delete(f"/api/v1/standing-orders/{order['id']}", headers=headers).status_code == 204
    assert client.delete(f"/api/v1/standing-orders/{order['id']}", headers=headers).status_code == 204
    clock.advance(days=5)
    assert standing_orders.run_due_standing_orders(bank).requested == 0
    assert len(_order_transfers(bank)) == 1
    [listed] = client.get("/api/v1/standing-orders", headers=headers).get_json()["items"]
    assert (listed["status"], listed["next_date"]) == ("cancelled", None)


def test_end_date_stops_it(bank, client):
    clock.freeze(JAN_31)
    user, headers, source, destination = _setup(bank, client)
    order = _create(client, headers, source, destination, end_date="2027-02-01")
    for _ in range(4):
        standing_orders.run_due_standing_orders(bank)
        _post_queued(bank)
        clock.advance(days=1)
    assert len(_order_transfers(bank)) == 2
    shown = client.get(f"/api/v1/standing-orders/{order['id']}", headers=headers).get_json()
    assert (shown["status"], shown["next_date"]) == ("ended", None)
    assert _balance(bank, source) == 80_00


def test_catch_up_after_downtime(bank, client):
    clock.freeze(JAN_31)
    user, headers, source, destination = _setup(bank, client)
    _create(client, headers, source, destination, amount="1.00")
    assert standing_orders.run_due_standing_orders(bank).requested == 1

    clock.advance(days=2)  # two missed dates: both paid, once
    report = standing_orders.run_due_standing_orders(bank)
    assert (report.requested, report.skipped) == (2, 0)
    assert standing_orders.run_due_standing_orders(bank).requested == 0

    clock.advance(days=10)  # ten missed dates: the last three days and today are paid, the rest skipped
    report = standing_orders.run_due_standing_orders(bank)
    assert (report.requested, report.skipped) == (4, 6)
    assert standing_orders.run_due_standing_orders(bank).requested == 0
    _post_queued(bank)
    assert len(_order_transfers(bank)) == 7
    assert _balance(bank, source) == 93_00
    with bank.db.transaction() as s:
        skipped = list(s.scalars(select(StandingOrderOccurrence).where(StandingOrderOccurrence.status == "skipped")))
    assert [o.occurrence_date for o in skipped] == [date(2027, 2, d) for d in range(3, 9)]
    assert all("catch-up window" in o.reason and o.job_id is None for o in skipped)


def test_bad_orders_are_refused_and_write_nothing(bank, client):
    clock.freeze(JAN_31)
    user, headers, source, destination = _setup(bank, client)
    stranger = make_user(bank)
    strangers_account = open_account(bank, stranger, "EUR", 50_00)
    dollars = open_account(bank, user, "USD")
    frozen = open_account(bank, user, "EUR")
    accounts.set_frozen(bank.db, make_user(bank, role="teller"), frozen, True)
    unverified = make_user(bank, kyc="unverified")
    unverified_account = open_account(bank, unverified, "EUR", 50_00)
    before = {m: _count(bank, m) for m in (Transfer, Job, IdempotencyKey, Notification, StandingOrder)}

    def refused(status, code=None, headers=headers, **fields):
        body = {
            "source_account_id": source,
            "destination_account_id": destination,
            "amount": "10.00",
            "currency": "EUR",
            "frequency": "monthly",
            "start_date": "2027-01-31",
            **fields,
        }
        body = {k: v for k, v in body.items() if v is not None}  # None: leave the field out
        response = client.post("/api/v1/standing-orders", json=body, headers=headers)
        assert response.status_code == status, (fields, response.get_json())
        if code:
            assert response.get_json()["code"] == code

    refused(404, "account_not_found", source_account_id=strangers_account)
    refused(404, "account_not_found", source_account_id="no-such-account")
    refused(404, "account_not_found", destination_account_id="no-such-account")
    refused(422, "currency_mismatch", destination_account_id=dollars)
    refused(422, "currency_mismatch", currency="USD")
    refused(422, "same_account", destination_account_id=source)
    refused(422, "account_frozen", destination_account_id=frozen)
    refused(422, "account_frozen", source_account_id=frozen)
    refused(403, "kyc_required", headers=auth_headers(client, unverified), source_account_id=unverified_account)
    refused(422, "invalid_amount", amount="0.00")
    refused(422, "invalid_amount", amount="1.001")
    refused(422, amount=10)
    refused(422, "unsupported_currency", currency="XXX")
    refused(422, frequency="yearly")
    refused(422, start_date="2027-01-30")
    refused(422, end_date="2027-01-30")
    refused(422, start_date="2028-03-01")
    refused(422, start_date="soon")
    refused(422, description="x" * 501)
    refused(422, surprise=True)
    refused(404, "account_not_found", destination_account_id=None, destination_account_number="99999999999")
    refused(422, destination_account_number="12345678901")  # and an id: one of the two
    refused(422, destination_account_id=None)  # neither
    assert {m: _count(bank, m) for m in before} == before


def test_the_payee_may_be_given_by_account_number(bank, client):
    user, headers, source, destination = _setup(bank, client)
    with bank.db.transaction() as s:
        number = s.get(Account, destination).number
    order = _create(client, headers, source, None, destination_account_id=None, destination_account_number=number)
    assert order["destination_account_id"] == destination
    assert client.post("/api/v1/standing-orders", json={}).status_code == 401


def test_idempotency_key_replays_the_first_order(bank, client):
    clock.freeze(JAN_31)
    user, headers, source, destination = _setup(bank, client)
    body = {
        "source_account_id": source,
        "destination_account_id": destination,
        "amount": "10.00",
        "currency": "EUR",
        "frequency": "weekly",
        "start_date": "2027-02-01",
    }
    keyed = {**headers, "Idempotency-Key": "rent-2027"}
    first = client.post("/api/v1/standing-orders", json=body, headers=keyed)
    again = client.post("/api/v1/standing-orders", json=body, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    changed = client.post("/api/v1/standing-orders", json={**body, "amount": "11.00"}, headers=keyed)
    assert changed.status_code == 422 and changed.get_json()["code"] == "idempotency_key_reused"
    assert _count(bank, StandingOrder) == 1


def test_a_large_standing_order_was_authorised_when_set_up_and_posts_without_a_code(bank, client):
    clock.freeze(JAN_31)
    user, headers, source, destination = _setup(bank, client, balance_minor=10_000_00)
    _create(client, headers, source, destination, amount="2500.00")
    assert _count(bank, Notification, Notification.template == "transfer_confirmation") == 0
    assert standing_orders.run_due_standing_orders(bank).requested == 1
    assert len(_post_queued(bank)) == 1
    assert _balance(bank, destination) == 2_500_00
