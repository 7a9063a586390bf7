"""Opaque keyset cursors and the page-size bounds."""

from __future__ import annotations

import base64
import json

import pytest

from core.errors import ValidationFailed
from core.pagination import DEFAULT_LIMIT, MAX_LIMIT, check_limit, decode_cursor, encode_cursor


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "values",
    [
        ("2024-05-01T12:00:00.123456Z", "550e8400-e29b-41d4-a716-446655440000"),
        (12345,),
        ("ünïcödé", 0, None),
        ("a" * 300, -1),
    ],
)
def test_cursor_round_trips(values: tuple[object, ...]) -> None:
    cursor = encode_cursor(*values)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert decode_cursor(cursor, len(values)) == list(values)


@pytest.mark.parametrize("cursor", [None, ""])
def test_no_cursor_means_the_first_page(cursor: str | None) -> None:
    assert decode_cursor(cursor, 2) is None


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "a",
        "@@@@",
        "not a cursor",
        "é",
        _b64(b"not json"),
        _b64(b"\xff\xfe\x00"),
        _b64(json.dumps({"a": 1}).encode()),
        _b64(b'"a string"'),
        _b64(b"42"),
        _b64(b"null"),
        _b64(json.dumps(["only-one"]).encode()),
        _b64(json.dumps(["a", "b", "c"]).encode()),
        encode_cursor("x", "y") + "!!",
        # Hostile: deeply nested JSON inside an otherwise short cursor (about 1.3 kB, fits any URL).
        pytest.param(_b64(b"[" * 1000), id="nested-1000-deep"),
        pytest.param(_b64(b"[" * 5000 + b"]" * 5000), id="nested-5000-deep"),
    ],
)
def test_garbage_cursor_is_invalid(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, 2)
    assert caught.value.code == "invalid_cursor"
    assert caught.value.status == 422
    assert caught.value.errors is not None and "cursor" in caught.value.errors


def test_cursor_of_another_arity_is_invalid() -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(encode_cursor("2024-05-01T12:00:00Z", "id"), 3)
    assert caught.value.code == "invalid_cursor"


def test_limit_defaults_to_50() -> None:
    assert check_limit(None) == DEFAULT_LIMIT == 50


@pytest.mark.parametrize("limit", [1, 2, 50, 499, 500])
def test_limit_within_bounds(limit: int) -> None:
    assert check_limit(limit) == limit


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, 10**9])
def test_limit_out_of_bounds(limit: int) -> None:
    assert MAX_LIMIT == 500
    with pytest.raises(ValidationFailed) as caught:
        check_limit(limit)
    assert caught.value.status == 422
    assert caught.value.errors is not None and "limit" in caught.value.errors
