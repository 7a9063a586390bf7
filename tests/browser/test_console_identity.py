"""Identity documents in a real browser: a customer's passport verified live; a teller approves a doubtful one."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import WAIT_MS, Bankq, accessible, keep_screenshot, passport_png, signed_in

pytestmark = pytest.mark.e2e


def test_a_rendered_passport_uploaded_in_the_browser_is_verified_live(bankq: Bankq, new_context) -> None:
    anna = bankq.customer("Anna Maria Eriksson", born="1974-08-12")
    page = signed_in(new_context(), anna["username"]).new_page()
    page.goto("/kyc")
    page.get_by_label("Document", exact=True).select_option("passport")
    page.get_by_label("Photo or scan").set_input_files(
        {"name": "passport.png", "mimeType": "image/png", "buffer": passport_png()})
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"/jobs/"))
    page.locator("#job-status [data-kyc='verified']").wait_for(timeout=WAIT_MS)
    keep_screenshot(page, "kyc-verified")
    assert bankq.client.call("GET", "/auth/me", anna["token"]).json()["kyc_status"] == "verified"


def _needs_review(bankq: Bankq, token: str) -> str:
    upload = bankq.client.call("POST", "/kyc/documents", token, "doubtful-passport",
                               files={"file": ("p.png", passport_png(), "image/png")},
                               data={"document_type": "passport"})
    assert upload.status_code == 202, upload.text
    job = bankq.client.wait_job(token, upload.json()["id"], timeout=WAIT_MS / 1000)
    assert job["result"]["status"] == "needs_review", job
    return str(job["result"]["document_id"])


def test_a_teller_approves_a_document_that_needs_review(bankq: Bankq, new_context, teller_state) -> None:
    # "Anna Marie" against a passport of ANNA MARIA: close, not certain, so a person decides.
    annika = bankq.customer("Anna Marie Eriksson", born="1974-08-12")
    document_id = _needs_review(bankq, annika["token"])
    page = new_context(storage_state=teller_state).new_page()
    page.goto("/staff/kyc")
    page.locator(f"a[href='/staff/kyc/{document_id}']").click()
    page.wait_for_function("() => document.querySelector('figure img')?.naturalWidth > 0")  # the image loaded
    assert "ERIKSSON" in page.locator("table").inner_text()
    assert "Name matches the profile: no" in page.locator("main").inner_text()
    keep_screenshot(page, "staff-kyc-review")
    accessible(page, "/staff/kyc/<document>")
    page.get_by_label("Reason").fill("Name variant checked against the original")
    page.get_by_role("button", name="Approve").click()
    page.locator("[data-doc-status='verified']").wait_for()
    assert bankq.client.call("GET", "/auth/me", annika["token"]).json()["kyc_status"] == "verified"
