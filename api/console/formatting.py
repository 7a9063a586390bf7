"""How the console shows things to a person: money with its currency, times in their zone, codes in words."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from core.time_zones import zone

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "INR": "₹", "JPY": "¥"}
MINUS = "\u2212"

STATUS_WORDS = {
    "queued": "Queued",
    "running": "Working…",
    "awaiting_confirmation": "Waiting for your code",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "cancelled": "Cancelled",
}

KIND_WORDS = {
    "transfer": "Transfer",
    "transfer_batch": "Batch of transfers",
    "deposit": "Deposit",
    "withdrawal": "Withdrawal",
    "reversal": "Reversal",
    "kyc": "Identity check",
    "otp": "One-time code",
    "statement": "Statement",
    "loan_disbursement": "Loan payout",
    "loan_repayment": "Loan repayment",
}

ERROR_WORDS = {
    "insufficient_funds": "There was not enough money in the account.",
    "limit_exceeded": "It would go over the account holder's daily or monthly limit.",
    "account_frozen": "One of the accounts is frozen.",
    "account_closed": "One of the accounts is closed.",
    "currency_mismatch": "The currency does not match the account.",
    "same_account": "The money would go to the account it comes from.",
    "confirmation_failed": "The confirmation code was wrong too many times.",
    "confirmation_expired": "The transfer was not confirmed within 10 minutes.",
    "cancelled": "It was cancelled.",
    "batch_failed": "One of the payments could not be made, so none was.",
    "kyc_required": "Your identity must be verified before you can send money.",
    "posting_rejected": "The ledger refused the posting.",
    "invalid_state": "It could not be completed.",
}

REASON_WORDS = {
    "mrz_not_found": "The machine-readable lines (<<<) at the bottom could not be found in the photo.",
    "mrz_unreadable": "The machine-readable lines could not be read with certainty.",
    "ocr_failed": "The document could not be read; a member of staff will look at it.",
    "document_expired": "The document has expired.",
    "name_mismatch": "The name on the document does not match the name on your profile.",
    "birth_date_mismatch": "The date of birth on the document does not match your profile.",
    "profile_birth_date_missing": "Your profile has no date of birth to compare with the document.",
}
REASON_PREFIXES = {
    "check_digit_failed": "A check digit did not match ({}): the reading may be wrong.",
    "uncertain_reading": "Part of the document was hard to read ({}).",
    "document_type_mismatch": "The document is not of the type chosen ({}).",
}
CHECK_WORDS = {
    "mrz_valid": "Machine-readable zone valid",
    "not_expired": "Not expired",
    "name_match": "Name matches the profile",
    "birth_date_match": "Date of birth matches the profile",
}


def money(amount: str | None, currency: str) -> str:
    """'-1234.5' EUR -> '−€1,234.50'; an unknown currency keeps its code: '12.000 KWD'."""
    if amount is None:
        return ""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        return f"{amount} {currency}"
    digits = len(amount.split(".", 1)[1]) if "." in amount else 0
    text = f"{abs(value):,.{digits}f}"
    sign = MINUS if value < 0 else ""
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def local_time(value: str | datetime | None, time_zone: str | None, with_zone: bool = True) -> str:
    """An RFC 3339 UTC time as the person's wall-clock time: '2026-11-25 18:40 CET'."""
    if not value:
        return ""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = instant.astimezone(zone(time_zone))
    text = local.strftime("%Y-%m-%d %H:%M")
    return f"{text} {local.tzname()}" if with_zone else text


def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status.replace("_", " ").capitalize())


def kind_words(kind: str) -> str:
    return KIND_WORDS.get(kind, kind.replace("_", " ").capitalize())


def error_words(error: dict | None) -> str:
    if not error:
        return ""
    code, message = error.get("code") or "", error.get("message") or ""
    words = ERROR_WORDS.get(code)
    if words and message and code == "limit_exceeded":
        return f"{words} {message}"
    return words or message or code.replace("_", " ").capitalize()


def reason_words(reason: str) -> str:
    if reason in REASON_WORDS:
        return REASON_WORDS[reason]
    prefix, _, detail = reason.partition(":")
    if prefix in REASON_PREFIXES:
        return REASON_PREFIXES[prefix].format(detail.replace("_", " "))
    return reason.replace("_", " ").capitalize()


def check_words(name: str) -> str:
    return CHECK_WORDS.get(name, name.replace("_", " ").capitalize())
