"""Idempotency keys: the header check and the request fingerprint."""

from __future__ import annotations

import json

import pytest

from core.errors import BadRequest
from core.idempotency import check_key, fingerprint

BODY = {
    "source_account_id": "a",
    "destination_account_id": "b",
    "amount": "10.00",
    "currency": "EUR",
    "meta": {"x": 1, "y": [1, 2, {"z": None}]},
}


def test_key_order_does_not_matter() -> None:
    reordered = {
        "meta": {"y": [1, 2, {"z": None}], "x": 1},
        "currency": "EUR",
        "amount": "10.00",
        "destination_account_id": "b",
        "source_account_id": "a",
    }
    assert fingerprint("POST", "/api/v1/transfers", BODY) == fingerprint("POST", "/api/v1/transfers", reordered)


def test_whitespace_in_the_json_does_not_matter() -> None:
    compact = json.loads(json.dumps(BODY, separators=(",", ":")))
    spaced = json.loads(json.dumps(BODY, indent=4) + "\n\n")
    assert fingerprint("POST", "/p", compact) == fingerprint("POST", "/p", spaced)


def test_method_case_does_not_matter() -> None:
    assert fingerprint("post", "/p", BODY) == fingerprint("POST", "/p", BODY)


@pytest.mark.parametrize(
    "changed",
    [
        {**BODY, "amount": "10.01"},
        {**BODY, "amount": 10},
        {**BODY, "currency": "USD"},
        {**BODY, "meta": {"x": 2, "y": [1, 2, {"z": None}]}},
        {**BODY, "meta": {"x": 1, "y": [2, 1, {"z": None}]}},
        {**BODY, "extra": None},
        {k: v for k, v in BODY.items() if k != "meta"},
    ],
)
def test_values_matter(changed: dict[str, object]) -> None:
    assert fingerprint("POST", "/p", changed) != fingerprint("POST", "/p", BODY)


def test_method_and_path_matter() -> None:
    base = fingerprint("POST", "/api/v1/deposits", BODY)
    assert fingerprint("PUT", "/api/v1/deposits", BODY) != base
    assert fingerprint("POST", "/api/v1/withdrawals", BODY) != base


def test_fingerprint_is_a_sha256_hex_digest() -> None:
    fp = fingerprint("POST", "/p", BODY)
    assert len(fp) == 64 and all(c in "0123456789abcdef" for c in fp)


@pytest.mark.parametrize("key", [None, ""])
def test_missing_key_is_required(key: str | None) -> None:
    with pytest.raises(BadRequest) as caught:
        check_key(key)
    assert caught.value.code == "idempotency_key_required"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "key",
    [
        "k" * 256,
        "k" * 1000,
        "has space",
        " ",
        "tab\there",
        "new\nline",
        "nul\x00",
        "\x1f",
        "del\x7f",
        "clé",
        "ключ",
        "emoji-🙂",
        "\u00a0",
    ],
)
def test_malformed_key_is_invalid(key: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_key(key)
    assert caught.value.code == "idempotency_key_invalid"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "key",
    ["a", "k" * 255, "550e8400-e29b-41d4-a716-446655440000", "".join(chr(c) for c in range(0x21, 0x7F))],
)
def test_printable_keys_are_accepted(key: str) -> None:
    assert check_key(key) == key
