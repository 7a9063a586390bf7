"""The console in a real browser: money moves and the job's status arrives on the page by itself."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import PASSWORD, WAIT_MS, Bankq, keep_screenshot, signed_in

pytestmark = pytest.mark.e2e
JOB_URL = re.compile(r"/jobs/([0-9a-f-]{36})$")


def status(page, wanted: str, bankq: Bankq | None = None):  # type: ignore[no-untyped-def]
    card = page.locator(f"#job-status [data-status='{wanted}']")
    try:
        card.wait_for(timeout=WAIT_MS)
    except PlaywrightTimeout:
        shown = page.locator("#job-status [data-status]")
        seen = "none"
        if shown.count():
            seen = f"{shown.get_attribute('data-status')} via {shown.get_attribute('data-via')}"
        job = JOB_URL.search(page.url)
        raise AssertionError(f"no {wanted!r} on {page.url} after {WAIT_MS} ms; the page shows {seen}\n"
                             + (bankq.diagnosis(job.group(1)) if bankq and job else "")) from None
    return card


def test_sign_up_deposit_by_a_teller_then_a_transfer_succeeds_live(bankq: Bankq, new_context, teller_state) -> None:
    page = new_context().new_page()
    username = f"alice{uuid.uuid4().hex[:6]}"
    page.goto("/signup")
    page.get_by_label("Full name").fill("Alice Martin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("heading", name="Hello, Alice Martin").wait_for()
    page.get_by_role("button", name="Open account").click()
    page.wait_for_url(re.compile(r"/accounts/"))
    number = page.get_by_role("heading", level=1).inner_text().split()[-1]

    teller = new_context(storage_state=teller_state).new_page()
    teller.goto(f"/staff/customers?q={username}")
    teller.get_by_role("link", name="Alice Martin").click()
    keep_screenshot(teller, "staff-customer")
    teller.get_by_role("link", name=f"Deposit or withdraw on {number}").click()
    teller.get_by_label("Amount in EUR").fill("100.00")
    teller.get_by_label("Description").fill("Cash at the counter")
    teller.get_by_role("button", name="Record").click()
    teller.wait_for_url(JOB_URL)
    status(teller, "succeeded", bankq)

    bob = bankq.customer("Bob Okafor")
    page.goto("/transfers/new")
    page.get_by_label("Account number").fill(bob["account"]["number"])
    page.get_by_label("Amount").fill("25.00")
    page.get_by_label("Description").fill("Rent share")
    keep_screenshot(page, "transfer-form")
    account_id = page.get_by_label("From").input_value()
    with bankq.holding(account_id):  # the worker waits: the page shows the job before it is done
        page.get_by_role("button", name="Send").click()
        page.wait_for_url(JOB_URL)
        assert page.locator("#job-status [data-status]").get_attribute("data-status") in ("queued", "running")
        job_url, navigations = page.url, []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
    card = status(page, "succeeded", bankq)
    assert card.get_attribute("data-via") == "stream"  # pushed over the event stream, not polled
    assert navigations == [] and page.url == job_url  # no reload
    assert "Succeeded" in card.inner_text() and "€25.00" in card.inner_text()
    keep_screenshot(page, "job-succeeded")

    page.goto("/")
    assert page.locator("td.balance").inner_text() == "€75.00"
    keep_screenshot(page, "accounts")
    page.get_by_role("link", name=number).click()
    lines = page.locator("tbody tr")
    assert lines.count() == 2
    assert "Rent share" in lines.nth(0).inner_text() and "−€25.00" in lines.nth(0).inner_text()
    assert bankq.client.balance(bob["token"], bob["account"]["id"]) == "25.00"


def test_a_large_transfer_is_confirmed_with_the_emailed_code(bankq: Bankq, new_context) -> None:
    alice, bob = bankq.customer(funds="2000.00"), bankq.customer("Bob Okafor")
    page = signed_in(new_context(), alice["username"]).new_page()
    page.goto("/transfers/new")
    page.get_by_label("Account number").fill(bob["account"]["number"])
    page.get_by_label("Amount").fill("1200.00")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(JOB_URL)
    status(page, "awaiting_confirmation", bankq)
    keep_screenshot(page, "confirm-code")

    page.get_by_label("Confirmation code").fill(bankq.code_from_mail(alice["email"], "transfer_confirmation"))
    page.get_by_role("button", name="Confirm transfer").click()
    page.wait_for_url(JOB_URL)
    assert "Succeeded" in status(page, "succeeded", bankq).inner_text()
    assert bankq.client.balance(bob["token"], bob["account"]["id"]) == "1200.00"


def _transfer_form_without_the_stream(bankq: Bankq, new_context, funds: str, amount: str):  # type: ignore[no-untyped-def]
    """Alice's transfer form filled in for Bob, on a page whose event stream is blocked (so it must poll)."""
    alice, bob = bankq.customer(funds=funds), bankq.customer("Bob Okafor")
    page = signed_in(new_context(), alice["username"]).new_page()
    page.route("**/jobs/*/events", lambda route: route.abort())
    page.goto("/transfers/new")
    page.get_by_label("Account number").fill(bob["account"]["number"])
    page.get_by_label("Amount").fill(amount)
    return alice, bob, page


def test_a_confirmation_code_being_typed_survives_the_status_polls(bankq: Bankq, new_context) -> None:
    """Without the event stream the page polls every 2 s; a poll that finds the job still waiting for its code
    must not put an empty form in place of the one the customer is filling in."""
    alice, bob, page = _transfer_form_without_the_stream(bankq, new_context, "2000.00", "1500.00")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(JOB_URL)
    status(page, "awaiting_confirmation", bankq)
    code = bankq.code_from_mail(alice["email"], "transfer_confirmation")
    with page.expect_response(lambda r: "/status" in r.url, timeout=10_000):  # a poll comes while it is filled in
        page.get_by_label("Confirmation code").fill(code)
    page.wait_for_timeout(300)  # past the swap the poll would have made
    assert page.get_by_label("Confirmation code").input_value() == code
    page.get_by_role("button", name="Confirm transfer").click()
    assert "Succeeded" in status(page, "succeeded", bankq).inner_text()
    assert bankq.client.balance(bob["token"], bob["account"]["id"]) == "1500.00"


def test_a_double_submitted_transfer_form_posts_once_and_polling_takes_over_without_the_stream(
    bankq: Bankq, new_context
) -> None:
    alice, bob, page = _transfer_form_without_the_stream(bankq, new_context, "50.00", "10.00")
    sent = page.evaluate("() => Object.fromEntries(new FormData(document.querySelector('form.once')))")
    with bankq.holding(alice["account"]["id"]):
        page.get_by_role("button", name="Send").dblclick()
        page.wait_for_url(JOB_URL)
        job_path = page.url.removeprefix(bankq.base)
        # The same form sent again (a resubmit after a lost answer): the same key, so the same job, nothing new.
        again = page.request.post("/transfers", form=sent, max_redirects=0)
        assert again.status == 303 and again.headers["location"] == job_path
        assert page.locator("#job-status [data-status]").get_attribute("data-status") in ("queued", "running")
    assert status(page, "succeeded", bankq).get_attribute("data-via") == "poll"
    page.locator("[sse-connect]").wait_for(state="detached")  # and the page stops retrying the stream
    assert len(bankq.jobs_of(alice["token"], "transfer")) == 1
    assert bankq.client.balance(alice["token"], alice["account"]["id"]) == "40.00"
    assert bankq.client.balance(bob["token"], bob["account"]["id"]) == "10.00"
