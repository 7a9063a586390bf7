"""Money: decimal strings at the edge, integer minor units inside, one currency table."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import ValidationFailed

# ISO 4217 minor-unit exponents for the currencies bankq holds.
CURRENCIES: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "INR": 2,
    "JPY": 0,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "CAD": 2,
    "AUD": 2,
    "KWD": 3,
}
MAX_DIGITS = 18
_AMOUNT = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")  # used with fullmatch: "$" would allow a trailing "\n"


@dataclass(frozen=True)
class Money:
    minor: int
    currency: str

    def __str__(self) -> str:
        return format_minor(self.minor, self.currency)


def check_currency(code: object, field: str = "currency") -> str:
    if not isinstance(code, str) or code not in CURRENCIES:
        raise ValidationFailed(
            "Unsupported currency.",
            code="unsupported_currency",
            errors={field: [f"Must be one of: {', '.join(sorted(CURRENCIES))}."]},
        )
    return code


def parse_amount(raw: object, currency: str, field: str = "amount") -> int:
    """Turn a decimal string in major units into positive integer minor units, or raise 422."""
    exponent = CURRENCIES[check_currency(currency)]

    def bad(message: str) -> ValidationFailed:
        return ValidationFailed("Invalid amount.", code="invalid_amount", errors={field: [message]})

    if not isinstance(raw, str):
        raise bad('Must be a decimal string such as "125.50", not a JSON number.')
    match = _AMOUNT.fullmatch(raw)
    if not match:
        raise bad('Must be a positive decimal string in major units, such as "125.50".')
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > exponent:
        raise bad(f"{currency} allows at most {exponent} decimal places.")
    if len(whole) + len(fraction) > MAX_DIGITS:
        raise bad(f"At most {MAX_DIGITS} digits.")
    minor = int(whole) * 10**exponent + int(fraction.ljust(exponent, "0") or "0")
    if minor >= 10**MAX_DIGITS:  # counted in minor units, so the amount always fits a BIGINT column
        raise bad(f"At most {MAX_DIGITS} digits counting the {currency} minor units.")
    if minor <= 0:
        raise bad("Must be greater than zero.")
    return minor


def format_minor(minor: int, currency: str) -> str:
    exponent = CURRENCIES[currency]
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}" if exponent else f"{sign}{whole}"
