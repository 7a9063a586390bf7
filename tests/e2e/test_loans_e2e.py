"""A loan through the real processes: a product, an application, a teller's approval whose disbursement job a real
worker posts once, and the schedule that follows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.stack import ADMIN, Client

pytestmark = pytest.mark.e2e


def test_an_approved_loan_is_paid_out_by_a_real_worker(e2e_env, stack_factory):
    stack = stack_factory(e2e_env)
    client = Client(stack.start_api())
    stack.start_worker()
    admin = client.login(*ADMIN)
    _, alice = client.customer("alice")
    account = client.account(alice)
    product = client.call("POST", "/loan-products", admin, json={
        "name": "Personal loan", "currency": "EUR", "annual_rate": "0.12", "min_amount": "100.00",
        "max_amount": "5000.00", "min_term_months": 3, "max_term_months": 24, "late_fee": "10.00"})
    assert product.status_code == 201, product.text
    loan = client.call("POST", "/loans", alice, json={"product_id": product.json()["id"], "amount": "1000.00",
                                                      "term_months": 3, "account_id": account})
    assert loan.status_code == 201, loan.text
    loan_id = loan.json()["id"]
    approved = client.call("POST", f"/loans/{loan_id}/approve", admin, "approve-1")
    assert approved.status_code == 202, approved.text
    assert client.wait_job(admin, approved.json()["id"])["status"] == "succeeded"
    shown = client.call("GET", f"/loans/{loan_id}", alice).json()
    assert shown["status"] == "active" and shown["outstanding"] == "1000.00" and shown["ledger_account_id"]
    assert client.balance(alice, account) == "1000.00"
    schedule = client.call("GET", f"/loans/{loan_id}/schedule", alice).json()["items"]
    assert [item["payment"] for item in schedule] == ["340.02", "340.02", "340.03"]
    assert sum(Decimal(item["principal"]) for item in schedule) == Decimal("1000.00")
    again = client.call("POST", f"/loans/{loan_id}/approve", admin, "approve-2")
    assert again.status_code == 409
    assert client.call("GET", "/admin/ledger/check", admin).json()["ok"]
