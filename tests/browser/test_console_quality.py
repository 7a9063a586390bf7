"""The console for a person: accessible (axe-core), usable by keyboard, readable at 375 px, light (no page over
200 KB before images), and the API's Swagger UI working from bankq's own assets."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import PASSWORD, Bankq, accessible, keep_screenshot, signed_in
from tests.e2e.stack import ADMIN

pytestmark = pytest.mark.e2e
PAGE_BUDGET_BYTES = 200 * 1024
WEIGHT = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const rest = performance.getEntriesByType('resource').filter(r => r.initiatorType !== 'img');
  return nav.decodedBodySize + rest.reduce((sum, r) => sum + r.decodedBodySize, 0);
}"""
weights: dict[str, int] = {}


def uncached(ctx: Any) -> Any:
    """Routing every request turns chromium's cache off: each page then loads (and weighs) all it needs."""
    ctx.route("**/*", lambda route: route.continue_())
    return ctx


def check(page: Any, path: str, width: int | None = None, *, audit: bool = True) -> None:
    """Open the page; it must pass axe's WCAG 2.1 A/AA rules (the main pages), weigh under the budget and, when
    narrow, not scroll sideways."""
    answer = page.goto(path)
    assert answer is not None and (answer.ok or answer.status == 404), (path, answer and answer.status)
    if audit:
        accessible(page, path)
    weights[path] = page.evaluate(WEIGHT)
    assert weights[path] < PAGE_BUDGET_BYTES, (path, weights[path])
    if width:
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width, f"{path} scrolls sideways"


def test_main_pages_are_accessible_light_and_fit_a_phone(bankq: Bankq, new_context, teller_state) -> None:
    alice, bob = bankq.customer(funds="80.00"), bankq.customer("Bob Okafor")
    paid = bankq.client.transfer(alice["token"], "a11y-pay", alice["account"]["id"], bob["account"]["id"], "12.50",
                                 description="Coffee beans")
    job = bankq.client.wait_job(alice["token"], paid.json()["id"])

    phone = uncached(new_context(width=375, height=740)).new_page()
    for path, audit in (("/signin", True), ("/signup", True), ("/password-reset", False), ("/no-such-page", False)):
        check(phone, path, 375, audit=audit)
    # By keyboard alone: tab from the skip link into the form, type, press Enter.
    phone.goto("/signin")
    phone.keyboard.press("Tab")
    assert phone.evaluate("() => document.activeElement.textContent") == "Skip to content"
    phone.keyboard.press("Enter")
    phone.keyboard.press("Tab")
    assert phone.evaluate("() => document.activeElement.id") == "f-username"
    phone.keyboard.type(alice["username"])
    phone.keyboard.press("Tab")
    phone.keyboard.type(PASSWORD)
    phone.keyboard.press("Enter")
    phone.wait_for_url(re.compile(r"/$"))
    main = ("/", f"/accounts/{alice['account']['id']}", "/transfers/new", f"/jobs/{job['id']}", "/kyc")
    for path in (*main, "/notifications", "/reminders", "/standing-orders", "/profile"):
        check(phone, path, 375, audit=path in main)
    phone.goto("/")
    keep_screenshot(phone, "phone-accounts")

    teller = uncached(new_context(storage_state=teller_state)).new_page()
    for path, audit in (("/staff/kyc", False), (f"/staff/customers?q={alice['username']}", False),
                        (f"/staff/customers/{alice['id']}", True),
                        (f"/staff/movements/new?account={alice['account']['id']}", True)):
        check(teller, path, audit=audit)
    admin = uncached(signed_in(new_context(), *ADMIN)).new_page()
    for path in ("/staff/queues", "/staff/audit", "/staff/ledger?run=1"):
        check(admin, path, audit=False)
    assert admin.locator("[data-ledger-ok='true']").is_visible()
    print("\npage weights before images (bytes):", dict(sorted(weights.items(), key=lambda kv: -kv[1])))


def test_swagger_ui_is_served_from_bankq_itself(bankq: Bankq, page) -> None:
    elsewhere: list[str] = []
    refused: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(bankq.base) or r.url.startswith("data:")
            else elsewhere.append(r.url))
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto("/api/v1/docs")
    page.locator(".swagger-ui .info .title").filter(has_text="bankq").wait_for()
    page.locator(".opblock-tag", has_text="Money movements").first.wait_for()
    keep_screenshot(page, "api-docs")
    assert elsewhere == [] and refused == []
