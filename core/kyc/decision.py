"""Deciding what a reading proves: verified, needs a human, or rejected, always with the reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.mrz import Mrz

# A near miss on the name (the MRZ name line has no check digit) goes to a person, a clear miss is rejected.
NAME_REVIEW_SIMILARITY = 0.75
PASSPORT_FORMATS = ("TD3",)
ID_CARD_FORMATS = ("TD1", "TD2")
READER_CHECKS = ("corroborated", "lookalikes", "fillers")


@dataclass(frozen=True)
class Decision:
    status: str
    checks: dict[str, bool | None]
    reasons: list[str] = field(default_factory=list)
    extracted: dict[str, Any] | None = None


def extracted_fields(mrz: Mrz) -> dict[str, Any]:
    return {
        "surname": mrz.surname,
        "given_names": mrz.given_names,
        "document_number": mrz.document_number,
        "nationality": mrz.nationality,
        "issuing_country": mrz.issuing_country,
        "birth_date": mrz.birth_date.isoformat() if mrz.birth_date else None,
        "sex": mrz.sex,
        "expiry_date": mrz.expiry_date.isoformat() if mrz.expiry_date else None,
        "format": mrz.format,
    }


def decide(mrz: Mrz | None, *, document_type: str, full_name: str, birth_date: date | None, today: date) -> Decision:
    if mrz is None:
        return Decision("needs_review", _no_checks(), ["mrz_not_found"])
    checks: dict[str, bool | None] = {
        "mrz_valid": mrz.valid,
        "not_expired": mrz.expiry_date is not None and mrz.expiry_date >= today,
        "name_match": None,
        "birth_date_match": None,
    }
    from core.kyc.names import names_match

    # Check digits, plus the reader's own doubts (fields without a check digit read differently in two crops,
    # look-alike glyphs, filler positions): either kind makes the reading uncertain.
    reasons = [
        f"{'uncertain_reading' if name in READER_CHECKS else 'check_digit_failed'}:{name}"
        for name, ok in mrz.checks.items()
        if not ok
    ]
    # the fields whose look-alike characters (O/0, I/1, ...) neither the check digit nor other evidence decided
    reasons += [f"uncertain_reading:{field}" for field in mrz.uncertain]
    matched, similarity = names_match(full_name, mrz.surname, mrz.given_names)
    checks["name_match"] = matched
    checks["birth_date_match"] = birth_date is not None and mrz.birth_date == birth_date
    expected = PASSPORT_FORMATS if document_type == "passport" else ID_CARD_FORMATS
    if not checks["not_expired"]:
        reasons.append("document_expired")
    if not matched:
        reasons.append("name_mismatch")
    if birth_date is None:
        reasons.append("profile_birth_date_missing")
    elif not checks["birth_date_match"]:
        reasons.append("birth_date_mismatch")
    if mrz.format not in expected:
        reasons.append(f"document_type_mismatch:{mrz.format}")
    extracted = extracted_fields(mrz)

    if not mrz.valid:
        # An uncertain reading proves nothing either way: a person looks at it.
        return Decision("needs_review", checks, reasons or ["mrz_unreadable"], extracted)
    definite = []
    if not checks["not_expired"]:
        definite.append("document_expired")
    if birth_date is not None and not checks["birth_date_match"]:
        definite.append("birth_date_mismatch")
    if not matched and similarity < NAME_REVIEW_SIMILARITY:
        definite.append("name_mismatch")
    if definite:
        return Decision("rejected", checks, reasons, extracted)
    if reasons:
        return Decision("needs_review", checks, reasons, extracted)
    return Decision("verified", checks, [], extracted)


def _no_checks() -> dict[str, bool | None]:
    return {"mrz_valid": False, "not_expired": None, "name_match": None, "birth_date_match": None}
