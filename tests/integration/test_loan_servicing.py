"""Loan servicing on real PostgreSQL, day by day on a frozen clock: interest accrues daily and sums to the
schedule's; each instalment is collected once however many ticks run at once; an unpaid one is overdue, retried
daily and charged the late fee once after the grace period; the borrower is reminded once before each due date;
early repayment in part reschedules the rest, in full closes the loan; the ledger balances throughout."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from unittest.mock import ANY

from sqlalchemy import func, select

from core.accounts import fees_account_number, interest_account_number, loan_charges_account_number
from core.clock import clock
from core.ledger import check_ledger
from core.loans import disburse_loan, repay_loan, service_loans
from core.models import Account, AuditEvent, LoanInstalment, Notification, Transfer
from core.transfers import post_transfer_jobs
from tests.integration.test_loans import approve, product
from tests.support import accept_transfer, auth_headers, make_user, open_account, run_concurrently

DISBURSED = date(2024, 1, 31)


def at(day: date) -> None:
    clock.freeze(datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC))


def balance(bank, number_or_id: str) -> int:
    with bank.db.transaction() as s:
        return int(s.scalar(select(Account.balance).where((Account.id == number_or_id)
                                                          | (Account.number == number_or_id))))


def count(bank, model, *where) -> int:
    with bank.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)))


def total(bank, kind: str) -> int:
    with bank.db.transaction() as s:
        return int(s.scalar(select(func.coalesce(func.sum(Transfer.amount), 0)).where(Transfer.kind == kind)))


def active_loan(client, bank, *, amount="1000.00", term=3, savings=100_00):
    """A disbursed loan on DISBURSED: (borrower, headers, account id, loan id)."""
    at(DISBURSED)
    made = product(client, bank)
    borrower = make_user(bank)
    account = open_account(bank, borrower, "EUR", savings)
    headers = auth_headers(client, borrower)
    body = {"product_id": made["id"], "amount": amount, "term_months": term, "account_id": account}
    loan = client.post("/api/v1/loans", json=body, headers=headers).get_json()
    teller = auth_headers(client, make_user(bank, role="teller"))
    job = approve(client, teller, loan["id"]).get_json()
    assert disburse_loan(bank.db, job["id"]) == "succeeded"
    return borrower, headers, account, loan["id"]


def books_agree(bank, client, headers, loan_id) -> None:
    """The admin ledger check is ok, and the loan's outstanding is its own account's balance, and the principal of
    its unpaid instalments."""
    assert check_ledger(bank.db) == {"ok": True, "accounts_checked": ANY, "mismatches": []}
    shown = client.get(f"/api/v1/loans/{loan_id}", headers=headers).get_json()
    unpaid = sum(minor(i["principal"]) for i in schedule(client, headers, loan_id) if i["status"] != "paid")
    assert -balance(bank, shown["ledger_account_id"]) == minor(shown["outstanding"]) == unpaid


def schedule(client, headers, loan_id):
    return client.get(f"/api/v1/loans/{loan_id}/schedule", headers=headers).get_json()["items"]


def minor(text: str) -> int:
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int(cents or 0)


def days(start: date, end: date):
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def test_interest_accrues_daily_and_each_instalment_is_collected_once(bank, client):
    _, headers, account, loan_id = active_loan(client, bank)
    items = schedule(client, headers, loan_id)
    interest = sum(minor(i["interest"]) for i in items)
    payments = sum(minor(i["payment"]) for i in items)
    assert [i["due_date"] for i in items] == ["2024-02-29", "2024-03-31", "2024-04-30"]
    accrued_by_day = {}
    for day in days(DISBURSED + timedelta(days=1), date(2024, 5, 2)):
        at(day)
        if day.isoformat() in {i["due_date"] for i in items}:
            run_concurrently(lambda d=day: service_loans(bank, today=d), n=3)  # beats racing on a due date
            books_agree(bank, client, headers, loan_id)
        else:
            service_loans(bank, today=day)
            assert check_ledger(bank.db)["mismatches"] == []  # which holds the loan's books to the loan, daily
        accrued_by_day[day] = total(bank, "interest_accrual")
    service_loans(bank, today=date(2024, 5, 2))

    assert count(bank, Transfer, Transfer.kind == "loan_repayment") == 3
    assert total(bank, "loan_repayment") == payments == 1000_00 + interest
    assert total(bank, "interest_accrual") == interest == balance(bank, interest_account_number("EUR"))
    # Daily: about a thirtieth of the month's interest each day, never taken back; all of it by the due date.
    assert accrued_by_day[date(2024, 2, 1)] == round(minor(items[0]["interest"]) / 29)
    steps = list(accrued_by_day.values())
    assert steps == sorted(steps) and accrued_by_day[date(2024, 2, 29)] == minor(items[0]["interest"])
    assert count(bank, Transfer, Transfer.kind == "interest_accrual") == (date(2024, 4, 30) - DISBURSED).days
    # Everything lent and earned came back: the loan's account and the charges receivable are back to zero, the
    # interest paid went through the receivable to the income account.
    shown = client.get(f"/api/v1/loans/{loan_id}", headers=headers).get_json()
    assert balance(bank, shown["ledger_account_id"]) == 0 == balance(bank, loan_charges_account_number("EUR"))
    assert total(bank, "charges_paid") == interest
    assert balance(bank, account) == 1000_00 + 100_00 - payments
    shown = client.get(f"/api/v1/loans/{loan_id}", headers=headers).get_json()
    assert shown["status"] == "repaid" and shown["outstanding"] == "0.00"
    assert [i["status"] for i in schedule(client, headers, loan_id)] == ["paid"] * 3
    assert check_ledger(bank.db)["ok"]


def test_an_unpaid_instalment_is_overdue_retried_daily_and_charged_the_late_fee_once(bank, client):
    borrower, headers, account, loan_id = active_loan(client, bank, savings=0)
    other = open_account(bank, make_user(bank), "EUR")
    move(bank, borrower, account, other)
    first = schedule(client, headers, loan_id)[0]
    due = date.fromisoformat(first["due_date"])

    for day in days(due, due + timedelta(days=4)):
        at(day)
        service_loans(bank, today=day)
        service_loans(bank, today=day)
        books_agree(bank, client, headers, loan_id)
    shown = client.get(f"/api/v1/loans/{loan_id}", headers=headers).get_json()
    assert shown["status"] == "overdue" and schedule(client, headers, loan_id)[0]["status"] == "overdue"
    assert count(bank, AuditEvent, AuditEvent.action == "loan.instalment_overdue") == 1
    assert count(bank, Transfer, Transfer.kind == "loan_repayment") == 0
    assert count(bank, Transfer, Transfer.kind == "late_fee") == 0  # still within the 5-day grace

    for day in days(due + timedelta(days=5), due + timedelta(days=8)):
        at(day)
        run_concurrently(lambda d=day: service_loans(bank, today=d), n=2)
        books_agree(bank, client, headers, loan_id)
    assert count(bank, Transfer, Transfer.kind == "late_fee") == 1
    assert balance(bank, fees_account_number("EUR")) == 15_00
    assert schedule(client, headers, loan_id)[0]["late_fee"] == "15.00"

    move(bank, _owner_of(bank, other), other, account)
    at(due + timedelta(days=9))
    service_loans(bank, today=due + timedelta(days=9))
    owed = minor(first["payment"]) + 15_00
    assert total(bank, "loan_repayment") == owed
    assert balance(bank, account) == 1000_00 - owed
    assert client.get(f"/api/v1/loans/{loan_id}", headers=headers).get_json()["status"] == "active"
    assert schedule(client, headers, loan_id)[0]["status"] == "paid"
    # The fee and the first month's interest went through the receivable: it holds only what accrued since.
    assert -balance(bank, loan_charges_account_number("EUR")) == total(bank, "interest_accrual") - minor(
        first["interest"])
    books_agree(bank, client, headers, loan_id)


def move(bank, user, source: str, destination: str, amount: str = "500.00", times: int = 2) -> None:
    """Posted transfers under the confirmation threshold."""
    for _ in range(times):
        accepted = accept_transfer(bank, user, source, destination, amount)
        assert post_transfer_jobs(bank.db, accepted.body["id"]).posted == [accepted.body["id"]]


def _owner_of(bank, account_id: str):
    from core.models import User

    with bank.db.transaction() as s:
        owner_id = s.scalar(select(Account.owner_id).where(Account.id == account_id))
        return s.get(User, owner_id)


def test_the_borrower_is_reminded_once_before_each_due_date(bank, client):
    borrower, headers, _, loan_id = active_loan(client, bank)
    due = date.fromisoformat(schedule(client, headers, loan_id)[0]["due_date"])
    for day in days(due - timedelta(days=6), due - timedelta(days=1)):
        at(day)
        service_loans(bank, today=day)
        service_loans(bank, today=day)
    with bank.db.transaction() as s:
        sent = list(s.scalars(select(Notification).where(Notification.user_id == borrower.id,
                                                         Notification.template == "reminder")))
        reminded = s.scalar(select(LoanInstalment.reminded_on).where(LoanInstalment.loan_id == loan_id,
                                                                     LoanInstalment.number == 1))
    assert len(sent) == 1 and reminded == due - timedelta(days=3)
    assert "is due on 2024-02-29" in sent[0].context["message"]


def repay(client, headers, loan_id, amount, key=None):
    return client.post(f"/api/v1/loans/{loan_id}/repay", json={"amount": amount},
                       headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


def test_early_repayment_in_part_reschedules_and_in_full_closes_the_loan(bank, client):
    _, headers, account, loan_id = active_loan(client, bank, amount="1200.00", term=4)
    before = schedule(client, headers, loan_id)
    day = DISBURSED + timedelta(days=10)
    at(day)
    service_loans(bank, today=day)

    too_much = repay(client, headers, loan_id, "5000.00")
    assert too_much.status_code == 422 and too_much.get_json()["code"] == "amount_exceeds_payoff"
    teller = auth_headers(client, make_user(bank, role="teller"))
    assert repay(client, teller, loan_id, "10.00").status_code == 403
    stranger = auth_headers(client, make_user(bank))
    assert repay(client, stranger, loan_id, "10.00").status_code == 404
    assert client.post(f"/api/v1/loans/{loan_id}/repay", json={"amount": "10.00"}, headers=headers).status_code == 400

    accepted = repay(client, headers, loan_id, "600.00", key="early-1")
    assert accepted.status_code == 202 and accepted.get_json()["kind"] == "loan_repayment"
    job_id = accepted.get_json()["id"]
    assert repay(client, headers, loan_id, "600.00", key="early-1").get_json()["id"] == job_id
    assert set(run_concurrently(lambda: repay_loan(bank.db, job_id), n=3)) == {"succeeded"}
    result = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()["result"]
    assert result["amount"] == "600.00" and result["status"] == "active"
    assert count(bank, Transfer, Transfer.kind == "loan_repayment", Transfer.status == "posted") == 1

    interest_10_days = total(bank, "interest_accrual")
    assert 0 < interest_10_days < minor(before[0]["interest"])
    assert result["outstanding"] == f"{(1200_00 - (600_00 - interest_10_days)) / 100:.2f}"
    after = schedule(client, headers, loan_id)
    assert [i["due_date"] for i in after] == [i["due_date"] for i in before]
    assert sum(minor(i["principal"]) for i in after) == 1200_00 - (600_00 - interest_10_days)
    asked = [minor(i["payment"]) for i in after]
    assert asked[0] - interest_10_days == asked[1] == asked[2] < minor(before[1]["payment"])  # a smaller annuity
    assert balance(bank, account) == 1200_00 + 100_00 - 600_00
    assert total(bank, "charges_paid") == interest_10_days  # the interest to date, settled on the receivable
    books_agree(bank, client, headers, loan_id)

    day = DISBURSED + timedelta(days=40)  # after the first instalment was collected
    for d in days(DISBURSED + timedelta(days=11), day):
        at(d)
        service_loans(bank, today=d)
    assert schedule(client, headers, loan_id)[0]["status"] == "paid"
    payoff_probe = repay(client, headers, loan_id, "100000.00").get_json()
    most = payoff_probe["errors"]["amount"][0].split()[2]
    full = repay(client, headers, loan_id, most)
    assert full.status_code == 202
    assert repay_loan(bank.db, full.get_json()["id"]) == "succeeded"
    shown = client.get(f"/api/v1/loans/{loan_id}", headers=headers).get_json()
    assert shown["status"] == "repaid" and shown["outstanding"] == "0.00"
    final = schedule(client, headers, loan_id)
    assert all(i["status"] == "paid" for i in final) and len(final) == 2
    books_agree(bank, client, headers, loan_id)
    assert balance(bank, shown["ledger_account_id"]) == 0 == balance(bank, loan_charges_account_number("EUR"))
    gone = repay(client, headers, loan_id, "1.00")
    assert gone.status_code == 409 and gone.get_json()["code"] == "loan_not_active"
    assert check_ledger(bank.db)["ok"]


def test_an_early_repayment_without_the_money_takes_nothing(bank, client):
    borrower, headers, account, loan_id = active_loan(client, bank, savings=0)
    accepted = repay(client, headers, loan_id, "300.00")
    move(bank, borrower, account, open_account(bank, make_user(bank), "EUR"))
    assert repay_loan(bank.db, accepted.get_json()["id"]) == "failed"
    job = client.get(f"/api/v1/jobs/{accepted.get_json()['id']}", headers=headers).get_json()
    assert job["error"]["code"] == "insufficient_funds"
    assert count(bank, Transfer, Transfer.kind == "loan_repayment", Transfer.status == "posted") == 0
    assert client.get(f"/api/v1/loans/{loan_id}", headers=headers).get_json()["outstanding"] == "1000.00"


def test_an_instalment_rescheduled_to_zero_is_paid_without_a_posting(bank, client):
    at(DISBURSED)
    made = product(client, bank, annual_rate="0")
    borrower = make_user(bank)
    account = open_account(bank, borrower, "EUR", 10_00)
    headers = auth_headers(client, borrower)
    loan_id = client.post("/api/v1/loans", json={"product_id": made["id"], "amount": "500.00", "term_months": 3,
                                                 "account_id": account}, headers=headers).get_json()["id"]
    teller = auth_headers(client, make_user(bank, role="teller"))
    assert disburse_loan(bank.db, approve(client, teller, loan_id).get_json()["id"]) == "succeeded"
    # 0.01 left over three instalments at 0 %: the level payment rounds to 0, the last repays the cent.
    assert repay_loan(bank.db, repay(client, headers, loan_id, "499.99").get_json()["id"]) == "succeeded"
    assert [i["payment"] for i in schedule(client, headers, loan_id)] == ["0.00", "0.00", "0.01"]
    for item in schedule(client, headers, loan_id):
        day = date.fromisoformat(item["due_date"])
        at(day)
        service_loans(bank, today=day)
    shown = client.get(f"/api/v1/loans/{loan_id}", headers=headers).get_json()
    assert shown["status"] == "repaid" and shown["outstanding"] == "0.00"
    assert count(bank, Transfer, Transfer.kind == "loan_repayment") == 2  # the early one and the cent
    assert balance(bank, account) == 10_00 and check_ledger(bank.db)["ok"]
