"""The console's guards in a real browser: roles, CSRF, sign-out revocation, no other origin's script."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Bankq, sign_in, signed_in

pytestmark = pytest.mark.e2e


def test_a_customer_cannot_open_staff_pages_nor_a_teller_admin_pages(bankq: Bankq, new_context, teller_state
                                                                     ) -> None:
    customer = signed_in(new_context(), bankq.customer()["username"]).new_page()
    for path in ("/staff/kyc", "/staff/customers", "/staff/movements/new", "/staff/audit"):
        answer = customer.goto(path)
        assert answer is not None and answer.status == 403, path
        assert customer.get_by_role("heading", name="Not allowed").is_visible()
    teller = new_context(storage_state=teller_state).new_page()
    assert teller.goto("/staff/kyc").status == 200
    for path in ("/staff/queues", "/staff/audit", "/staff/ledger"):
        assert teller.goto(path).status == 403, path


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(bankq: Bankq, new_context) -> None:
    alice = bankq.customer(funds="20.00")
    page = signed_in(new_context(), alice["username"]).new_page()
    page.goto("/")
    page.evaluate("() => document.querySelector(\"form[action='/accounts'] input[name=csrf_token]\").remove()")
    page.get_by_text("Open an account").click()
    page.get_by_role("button", name="Open account").click()
    page.get_by_role("heading", name="Bad request").wait_for()
    assert "not sent from a page of this site" in page.locator("main").inner_text()

    page.goto("/transfers/new")
    sent = page.evaluate("() => Object.fromEntries(new FormData(document.querySelector('form.once')))")
    del sent["csrf_token"]
    sent.update({"destination_account_number": bankq.customer()["account"]["number"], "amount": "5.00"})
    refused = page.request.post("/transfers", form=sent, max_redirects=0)
    assert refused.status == 400
    accounts = bankq.client.call("GET", "/accounts", alice["token"]).json()["items"]
    assert len(accounts) == 1 and accounts[0]["balance"] == "20.00"
    assert bankq.jobs_of(alice["token"], "transfer") == []


def test_signing_out_revokes_the_session_cookie(bankq: Bankq, new_context) -> None:
    first = new_context()
    page = first.new_page()
    sign_in(page, bankq.customer()["username"])
    cookies = first.cookies()
    [session] = [c for c in cookies if c["name"] == "bankq_console"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and not session["secure"]  # plain http here
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin")

    stolen = new_context()
    stolen.add_cookies(cookies)  # the cookie as it was before signing out
    replay = stolen.new_page()
    replay.goto("/")
    assert replay.url.endswith("/signin?next=/")
