"""Amounts at the edge: decimal strings in, integer minor units out, and back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ValidationFailed
from core.money import CURRENCIES, MAX_DIGITS, check_currency, format_minor, parse_amount

BIGINT_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("raw", "currency", "minor"),
    [
        ("125.50", "EUR", 12550),
        ("125.5", "EUR", 12550),
        ("125", "EUR", 12500),
        ("0.01", "EUR", 1),
        ("0.1", "EUR", 10),
        ("1000000.00", "USD", 100000000),
        ("100", "JPY", 100),
        ("1", "JPY", 1),
        ("1.234", "KWD", 1234),
        ("0.001", "KWD", 1),
        ("1.2", "KWD", 1200),
        ("7", "KWD", 7000),
        ("1234567890123456.78", "EUR", 123456789012345678),
        ("123456789012345678", "JPY", 123456789012345678),
    ],
)
def test_parses_valid_amounts_by_currency_exponent(raw: str, currency: str, minor: int) -> None:
    assert parse_amount(raw, currency) == minor


@pytest.mark.parametrize("raw", [100, 1.5, Decimal("1.00"), True, False, None, ["1.00"], {"amount": "1"}])
def test_rejects_anything_but_a_string(raw: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_amount(raw, "EUR")
    assert caught.value.code == "invalid_amount"
    assert caught.value.status == 422
    assert caught.value.errors and "amount" in caught.value.errors


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "-1.00",
        "-0.01",
        "0",
        "0.00",
        "0.0",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "1e3",
        "1E3",
        "1.5e2",
        "+1.00",
        "01.00",
        "00",
        "007",
        " 1.00",
        "1.00 ",
        "1.00\n",
        "\t1.00",
        "1 000.00",
        "1,00",
        "1_000",
        "1.",
        ".50",
        "1.2.3",
        "0x10",
        "١٢",
        "١٢.٥٠",
        "１２",
        "12\u00a0",
        "abc",
    ],
)
def test_rejects_malformed_amounts(raw: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_amount(raw, "EUR")
    assert caught.value.code == "invalid_amount"


@pytest.mark.parametrize(
    ("raw", "currency"),
    [("1.001", "EUR"), ("0.001", "USD"), ("1.5", "JPY"), ("100.0", "JPY"), ("1.2345", "KWD"), ("0.0001", "KWD")],
)
def test_rejects_more_decimals_than_the_currency_has(raw: str, currency: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_amount(raw, currency)
    assert caught.value.code == "invalid_amount"


@pytest.mark.parametrize(
    ("raw", "currency"),
    [
        ("1" * (MAX_DIGITS + 1), "JPY"),
        ("12345678901234567.89", "EUR"),
        ("1234567890123456.789", "KWD"),
        ("9" * 40, "EUR"),
    ],
)
def test_rejects_more_than_18_digits(raw: str, currency: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_amount(raw, currency)
    assert caught.value.code == "invalid_amount"


@pytest.mark.parametrize("currency", ["EUR", "JPY", "KWD"])
def test_an_accepted_amount_fits_the_bigint_column(currency: str) -> None:
    """Minor units are stored as BIGINT: an amount the parser accepts must be storable, or be a 422."""
    raw = "9" * MAX_DIGITS
    try:
        minor = parse_amount(raw, currency)
    except ValidationFailed as exc:
        assert exc.code == "invalid_amount"
    else:
        assert minor <= BIGINT_MAX, f"{raw} {currency} parsed to {minor}, which overflows BIGINT"


@pytest.mark.parametrize("currency", ["eur", "XXX", "", "EURO", None, 978])
def test_unsupported_currency_is_refused(currency: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_currency(currency)
    assert caught.value.code == "unsupported_currency"
    with pytest.raises(ValidationFailed) as caught:
        parse_amount("1.00", currency)  # type: ignore[arg-type]
    assert caught.value.code == "unsupported_currency"


@pytest.mark.parametrize("currency", ["EUR", "USD", "GBP", "INR", "JPY", "KWD"])
def test_supported_currency_is_returned(currency: str) -> None:
    assert check_currency(currency) == currency


def test_check_currency_names_the_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_currency("XXX", field="target_currency")
    assert caught.value.errors is not None and "target_currency" in caught.value.errors


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (12550, "EUR", "125.50"),
        (1, "EUR", "0.01"),
        (0, "EUR", "0.00"),
        (-1, "EUR", "-0.01"),
        (-12550, "EUR", "-125.50"),
        (100, "JPY", "100"),
        (-5, "JPY", "-5"),
        (1234, "KWD", "1.234"),
        (1, "KWD", "0.001"),
        (-1000, "KWD", "-1.000"),
    ],
)
def test_format_minor(minor: int, currency: str, text: str) -> None:
    assert format_minor(minor, currency) == text


@pytest.mark.parametrize(
    ("raw", "currency"),
    [
        ("125.50", "EUR"),
        ("0.01", "EUR"),
        ("100", "JPY"),
        ("1", "JPY"),
        ("1.234", "KWD"),
        ("0.001", "KWD"),
        ("1234567890123456.78", "EUR"),
    ],
)
def test_canonical_amounts_round_trip(raw: str, currency: str) -> None:
    assert format_minor(parse_amount(raw, currency), currency) == raw


@given(minor=st.integers(min_value=1, max_value=10**MAX_DIGITS - 1), currency=st.sampled_from(sorted(CURRENCIES)))
def test_format_then_parse_round_trips(minor: int, currency: str) -> None:
    text = format_minor(minor, currency)
    assert parse_amount(text, currency) == minor
    assert format_minor(parse_amount(text, currency), currency) == text
