"""Loans on real PostgreSQL: products, applications and their checks, reject, approve as a job whose worker pays
the loan out exactly once under duplicate delivery, the stored schedule, and nobody else's loan is visible."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import func, select

from core.accounts import loan_charges_account_number
from core.clock import clock
from core.ledger import check_ledger
from core.loans import disburse_loan
from core.models import Account, AuditEvent, Entry, Job, Loan, LoanInstalment, Transfer
from tests.support import auth_headers, make_user, open_account, run_concurrently

PRODUCT = {
    "name": "Personal loan",
    "currency": "EUR",
    "annual_rate": "0.12",
    "min_amount": "500.00",
    "max_amount": "20000.00",
    "min_term_months": 3,
    "max_term_months": 60,
    "late_fee": "15.00",
}


def _count(bank, model, *where):
    with bank.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _balance(bank, number_or_id):
    with bank.db.transaction() as s:
        return s.scalar(select(Account.balance).where((Account.id == number_or_id) | (Account.number == number_or_id)))


def product(client, bank, **overrides):
    admin = auth_headers(client, make_user(bank, role="admin"))
    answer = client.post("/api/v1/loan-products", json={**PRODUCT, **overrides}, headers=admin)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def applied(client, bank, *, amount="1000.00", term=3):
    """A customer with an EUR account and an applied loan: (customer headers, account id, loan)."""
    made = product(client, bank)
    customer = make_user(bank)
    account = open_account(bank, customer, "EUR")
    headers = auth_headers(client, customer)
    body = {"product_id": made["id"], "amount": amount, "term_months": term, "account_id": account}
    answer = client.post("/api/v1/loans", json=body, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    return headers, account, answer.get_json()


def approve(client, headers, loan_id, key=None):
    return client.post(
        f"/api/v1/loans/{loan_id}/approve", headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex}
    )


def test_admins_define_products_and_anyone_signed_in_lists_them(bank, client):
    made = product(client, bank)
    assert made["annual_rate"] == "0.12" and made["min_amount"] == "500.00" and made["late_fee"] == "15.00"
    customer = auth_headers(client, make_user(bank))
    listed = client.get("/api/v1/loan-products", headers=customer)
    assert listed.status_code == 200 and [p["id"] for p in listed.get_json()["items"]] == [made["id"]]
    assert client.get("/api/v1/loan-products").status_code == 401
    refused = client.post("/api/v1/loan-products", json=PRODUCT, headers=customer)
    assert refused.status_code == 403
    teller = auth_headers(client, make_user(bank, role="teller"))
    assert client.post("/api/v1/loan-products", json=PRODUCT, headers=teller).status_code == 403
    assert _count(bank, AuditEvent, AuditEvent.action == "loan_product.created") == 1


def test_product_validation_is_422_with_field_errors(bank, client):
    admin = auth_headers(client, make_user(bank, role="admin"))
    cases = {
        "annual_rate": [{"annual_rate": "7.99"}, {"annual_rate": "0.1234567"}, {"annual_rate": 0.05}],
        "min_amount": [{"min_amount": "0"}, {"min_amount": "1.001"}, {"min_amount": 100}],
        "max_amount": [{"max_amount": "100.00"}],
        "max_term_months": [{"max_term_months": 2}, {"max_term_months": 481}],
        "min_term_months": [{"min_term_months": 0}, {"min_term_months": "12"}],
        "late_fee": [{"late_fee": "-1"}],
        "currency": [{"currency": "XXX"}],
        "name": [{"name": ""}, {"name": "   "}],
    }
    for field, overrides in cases.items():
        for override in overrides:
            answer = client.post("/api/v1/loan-products", json={**PRODUCT, **override}, headers=admin)
            assert answer.status_code == 422, (override, answer.get_json())
            assert field in answer.get_json().get("errors", {}), (override, answer.get_json())
    free = client.post("/api/v1/loan-products", json={**PRODUCT, "late_fee": "0"}, headers=admin)
    assert free.status_code == 201 and free.get_json()["late_fee"] == "0.00"
    assert _count(bank, AuditEvent, AuditEvent.action == "loan_product.created") == 1


def test_an_application_is_checked_against_the_product_and_the_account(bank, client):
    made = product(client, bank)
    customer, other = make_user(bank), make_user(bank)
    eur, usd = open_account(bank, customer, "EUR"), open_account(bank, customer, "USD")
    theirs = open_account(bank, other, "EUR")
    headers = auth_headers(client, customer)

    def apply(**body):
        return client.post(
            "/api/v1/loans",
            json={"product_id": made["id"], "amount": "1000.00", "term_months": 12, "account_id": eur, **body},
            headers=headers,
        )

    for body, status, field in [
        ({"amount": "499.99"}, 422, "amount"),
        ({"amount": "20000.01"}, 422, "amount"),
        ({"amount": "1000.001"}, 422, "amount"),
        ({"term_months": 2}, 422, "term_months"),
        ({"term_months": 61}, 422, "term_months"),
        ({"term_months": "12"}, 422, "term_months"),
        ({"account_id": usd}, 422, "account_id"),
    ]:
        answer = apply(**body)
        assert answer.status_code == status and field in answer.get_json()["errors"], (body, answer.get_json())
    assert apply(account_id=usd).get_json()["code"] == "currency_mismatch"
    assert apply(account_id=theirs).status_code == 404
    assert apply(product_id=str(uuid.uuid4())).get_json()["code"] == "loan_product_not_found"
    teller = auth_headers(client, make_user(bank, role="teller"))
    assert client.post("/api/v1/loans", json={}, headers=teller).status_code == 422
    staff_apply = client.post(
        "/api/v1/loans",
        json={"product_id": made["id"], "amount": "1000.00", "term_months": 12, "account_id": eur},
        headers=teller,
    )
    assert staff_apply.status_code == 403
    unverified = make_user(bank, kyc="pending")
    mine = open_account(bank, unverified, "EUR")
    answer = client.post(
        "/api/v1/loans",
        json={"product_id": made["id"], "amount": "1000.00", "term_months": 12, "account_id": mine},
        headers=auth_headers(client, unverified),
    )
    assert answer.status_code == 403 and answer.get_json()["code"] == "kyc_required"
    client.post(f"/api/v1/accounts/{eur}/freeze", headers=teller)
    assert apply().get_json()["code"] == "account_frozen"
    assert _count(bank, Loan) == 0

    client.post(f"/api/v1/accounts/{eur}/unfreeze", headers=teller)
    answer = apply()
    assert answer.status_code == 201
    loan = answer.get_json()
    assert loan["status"] == "applied" and loan["principal"] == "1000.00" and loan["outstanding"] == "0.00"
    assert loan["annual_rate"] == "0.12" and loan["term_months"] == 12 and loan["account_id"] == eur


def test_staff_list_and_reject_and_only_the_borrower_sees_a_loan(bank, client):
    headers, _, loan = applied(client, bank)
    teller = auth_headers(client, make_user(bank, role="teller"))
    stranger = auth_headers(client, make_user(bank))
    listed = client.get("/api/v1/loans?status=applied", headers=teller).get_json()["items"]
    assert [item["id"] for item in listed] == [loan["id"]]
    assert client.get("/api/v1/loans?status=active", headers=teller).get_json()["items"] == []
    assert client.get("/api/v1/loans", headers=stranger).get_json()["items"] == []
    assert client.get(f"/api/v1/loans/{loan['id']}", headers=stranger).status_code == 404
    assert client.get(f"/api/v1/loans/{loan['id']}/schedule", headers=stranger).status_code == 404
    assert client.get(f"/api/v1/loans/{loan['id']}", headers=headers).status_code == 200
    assert client.post(f"/api/v1/loans/{loan['id']}/reject", json={"reason": "x"}, headers=headers).status_code == 403
    assert approve(client, headers, loan["id"]).status_code == 403

    rejected = client.post(f"/api/v1/loans/{loan['id']}/reject", json={"reason": "Income too low"}, headers=teller)
    assert rejected.status_code == 200
    assert rejected.get_json()["status"] == "rejected" and rejected.get_json()["reason"] == "Income too low"
    again = client.post(f"/api/v1/loans/{loan['id']}/reject", json={"reason": "again"}, headers=teller)
    assert again.status_code == 409 and again.get_json()["code"] == "loan_not_applied"
    late = approve(client, teller, loan["id"])
    assert late.status_code == 409 and late.get_json()["code"] == "loan_not_applied"
    assert client.post(f"/api/v1/loans/{uuid.uuid4()}/reject", json={"reason": "x"}, headers=teller).status_code == 404
    assert _count(bank, Job) == 0  # nothing was queued for the rejected loan


def test_approval_disburses_once_under_duplicate_delivery_and_writes_the_schedule(bank, client):
    clock.freeze(datetime(2024, 1, 31, 9, 0, tzinfo=UTC))
    headers, account, loan = applied(client, bank, amount="1000.00", term=3)
    teller = auth_headers(client, make_user(bank, role="teller"))
    missing_key = client.post(f"/api/v1/loans/{loan['id']}/approve", headers=teller)
    assert missing_key.status_code == 400 and missing_key.get_json()["code"] == "idempotency_key_required"

    accepted = approve(client, teller, loan["id"], key="approve-1")
    assert accepted.status_code == 202, accepted.get_json()
    job = accepted.get_json()
    assert job["kind"] == "loan_disbursement" and job["status"] == "queued"
    assert accepted.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert job["links"]["resource"] == f"/api/v1/loans/{loan['id']}"
    replay = approve(client, teller, loan["id"], key="approve-1")
    assert replay.get_json()["id"] == job["id"] and replay.headers["Idempotent-Replayed"] == "true"
    second = approve(client, teller, loan["id"])
    assert second.status_code == 409 and second.get_json()["code"] == "loan_not_applied"
    assert client.get(f"/api/v1/loans/{loan['id']}", headers=headers).get_json()["status"] == "approved"

    # The same message delivered four times at once, then once more: one payout.
    assert set(run_concurrently(lambda: disburse_loan(bank.db, job["id"]), n=4)) == {"succeeded"}
    assert disburse_loan(bank.db, job["id"]) == "succeeded"
    assert _balance(bank, account) == 1000_00
    assert _count(bank, Transfer, Transfer.kind == "disbursement") == 1
    assert _count(bank, Entry, Entry.account_id == account) == 1
    assert _count(bank, AuditEvent, AuditEvent.action == "loan.disbursed") == 1
    assert check_ledger(bank.db)["ok"]

    done = client.get(f"/api/v1/jobs/{job['id']}", headers=teller).get_json()
    assert done["status"] == "succeeded" and done["attempts"] == 1
    assert done["result"]["loan_id"] == loan["id"]
    shown = client.get(f"/api/v1/loans/{loan['id']}", headers=headers).get_json()
    assert shown["status"] == "active" and shown["outstanding"] == "1000.00" and shown["disbursed_on"] == "2024-01-31"
    assert shown["disbursement_transfer_id"] == done["result"]["transfer_id"]
    # The loan's own account paid it out: it holds minus what is owed, and nothing else moved.
    ledger_account = shown["ledger_account_id"]
    assert done["result"]["ledger_account_id"] == ledger_account
    assert shown["ledger_account_number"] == f"BANKQ-LOAN-{loan['id'].replace('-', '')[:20].upper()}"
    assert _balance(bank, ledger_account) == -1000_00 and _balance(bank, loan_charges_account_number("EUR")) == 0
    with bank.db.transaction() as s:
        disbursement = s.get(Transfer, shown["disbursement_transfer_id"])
        assert (disbursement.source_account_id, disbursement.destination_account_id) == (ledger_account, account)
        assert s.get(Account, ledger_account).kind == "internal"
    assert client.get(f"/api/v1/accounts/{ledger_account}", headers=teller).status_code == 404  # not a customer's
    undo = client.post(f"/api/v1/transfers/{shown['disbursement_transfer_id']}/reverse", json={"reason": "x"},
                       headers={**teller, "Idempotency-Key": "undo"})
    assert undo.status_code == 409 and undo.get_json()["code"] == "not_reversible"  # the loan's books stay whole
    stray = client.post("/api/v1/transfers", json={"source_account_id": account, "amount": "1.00", "currency": "EUR",
                                                   "destination_account_number": shown["ledger_account_number"]},
                        headers={**headers, "Idempotency-Key": "stray"})
    assert stray.status_code == 404  # nobody pays into a loan's account but its repayments
    entries = client.get(f"/api/v1/accounts/{account}/entries", headers=headers).get_json()["items"]
    assert [(e["amount"], e["transfer_id"]) for e in entries] == [("1000.00", shown["disbursement_transfer_id"])]

    schedule = client.get(f"/api/v1/loans/{loan['id']}/schedule", headers=headers).get_json()["items"]
    assert schedule == [
        {
            "number": 1,
            "due_date": "2024-02-29",
            "payment": "340.02",
            "principal": "330.02",
            "interest": "10.00",
            "late_fee": "0.00",
            "status": "due",
        },
        {
            "number": 2,
            "due_date": "2024-03-31",
            "payment": "340.02",
            "principal": "333.32",
            "interest": "6.70",
            "late_fee": "0.00",
            "status": "due",
        },
        {
            "number": 3,
            "due_date": "2024-04-30",
            "payment": "340.03",
            "principal": "336.66",
            "interest": "3.37",
            "late_fee": "0.00",
            "status": "due",
        },
    ]
    with bank.db.transaction() as s:
        assert s.scalar(select(func.sum(LoanInstalment.principal))) == 1000_00
        assert s.scalar(select(func.min(LoanInstalment.due_date))) == date(2024, 2, 29)
    assert client.get("/api/v1/loans?status=active", headers=teller).get_json()["items"][0]["id"] == loan["id"]


def test_a_frozen_account_fails_the_disbursement_and_the_loan_can_be_approved_again(bank, client):
    _, account, loan = applied(client, bank)
    teller = auth_headers(client, make_user(bank, role="teller"))
    job = approve(client, teller, loan["id"]).get_json()
    client.post(f"/api/v1/accounts/{account}/freeze", headers=teller)
    assert disburse_loan(bank.db, job["id"]) == "failed"
    failed = client.get(f"/api/v1/jobs/{job['id']}", headers=teller).get_json()
    assert failed["error"]["code"] == "account_frozen"
    shown = client.get(f"/api/v1/loans/{loan['id']}", headers=teller).get_json()
    assert shown["status"] == "applied" and shown["failure_code"] == "account_frozen"
    assert client.get(f"/api/v1/loans/{loan['id']}/schedule", headers=teller).get_json() == {"items": []}
    assert _balance(bank, account) == 0 and _count(bank, Transfer, Transfer.kind == "disbursement") == 0
    assert _count(bank, Account, Account.type == "loan") == 0 and shown["ledger_account_id"] is None

    client.post(f"/api/v1/accounts/{account}/unfreeze", headers=teller)
    again = approve(client, teller, loan["id"]).get_json()
    assert disburse_loan(bank.db, again["id"]) == "succeeded"
    assert disburse_loan(bank.db, job["id"]) == "failed"  # the old job's late duplicate changes nothing
    assert _balance(bank, account) == 1000_00 and check_ledger(bank.db)["ok"]


def test_a_customer_with_a_loan_still_open_cannot_be_closed(bank, client):
    _, _, loan = applied(client, bank)
    teller = auth_headers(client, make_user(bank, role="teller"))
    refused = client.patch(f"/api/v1/customers/{loan['user_id']}/status", json={"status": "closed"}, headers=teller)
    body = refused.get_json()
    assert (refused.status_code, body["code"], body["open_loans"]) == (409, "loan_open", 1)
    with bank.db.transaction() as s:
        assert s.get(Loan, loan["id"]).status == "applied"
        assert {a.status for a in s.scalars(select(Account).where(Account.owner_id == loan["user_id"]))} == {"active"}

    rejected = client.post(f"/api/v1/loans/{loan['id']}/reject", json={"reason": "Income not shown"}, headers=teller)
    assert rejected.status_code == 200, rejected.get_json()
    closed = client.patch(f"/api/v1/customers/{loan['user_id']}/status", json={"status": "closed"}, headers=teller)
    assert (closed.status_code, closed.get_json()["status"]) == (200, "closed")
