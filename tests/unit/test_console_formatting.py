"""How the console shows money, times and codes to a person."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.console.blueprint import safe_next
from api.console.formatting import error_words, local_time, money, reason_words, status_words


@pytest.mark.parametrize(("amount", "currency", "shown"), [
    ("1234.50", "EUR", "€1,234.50"),
    ("-125.50", "EUR", "\u2212€125.50"),
    ("0.01", "GBP", "£0.01"),
    ("1000000", "JPY", "¥1,000,000"),
    ("12.000", "KWD", "12.000 KWD"),
    ("5.00", "CHF", "5.00 CHF"),
])
def test_money_keeps_the_currencys_digits_and_groups_thousands(amount: str, currency: str, shown: str) -> None:
    assert money(amount, currency) == shown


def test_times_show_in_the_persons_zone_with_its_abbreviation() -> None:
    assert local_time("2026-11-25T17:40:02Z", "Europe/Berlin") == "2026-11-25 18:40 CET"
    assert local_time("2026-07-01T12:00:00+00:00", "Europe/Berlin") == "2026-07-01 14:00 CEST"
    assert local_time(datetime(2026, 1, 1, tzinfo=UTC), "Nowhere/Unknown") == "2026-01-01 00:00 UTC"
    assert local_time(None, "UTC") == ""


def test_codes_in_words() -> None:
    assert status_words("awaiting_confirmation") == "Waiting for your code"
    assert error_words({"code": "insufficient_funds", "message": "x"}) == "There was not enough money in the account."
    assert error_words({"code": "limit_exceeded", "message": "EUR 10.00 left today."}).endswith("EUR 10.00 left today.")
    assert error_words({"code": "something_new", "message": "As the worker said."}) == "As the worker said."
    assert reason_words("name_mismatch").startswith("The name on the document")
    assert reason_words("check_digit_failed:birth_date") == (
        "A check digit did not match (birth date): the reading may be wrong.")
    assert reason_words("brand_new_reason") == "Brand new reason"


@pytest.mark.parametrize(("target", "kept"), [
    ("/transfers/new", "/transfers/new"), ("/accounts/1?cursor=x", "/accounts/1?cursor=x"),
    ("//evil.example/", None), ("https://evil.example/", None), ("/\\evil.example", None), ("", None), (None, None),
    ("/ok\x00", None), ("/ok\r\nSet-Cookie: x", None),
])
def test_after_sign_in_only_paths_on_this_site_are_followed(target: str | None, kept: str | None) -> None:
    assert safe_next(target) == kept
