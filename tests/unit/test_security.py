"""The password policy and argon2id hashing."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from core import security
from core.errors import ValidationFailed
from core.security import check_password_strength, hash_password, verify_password

# The password of the hash verified against when a user has none (core.security._DUMMY_HASH).
DUMMY_PASSWORD = "bankq-timing-equaliser"


def _weak(password: str, username: str | None = None) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        check_password_strength(password, username=username)
    assert caught.value.code == "weak_password"
    assert caught.value.status == 422
    assert caught.value.errors is not None and caught.value.errors["password"]
    return caught.value


@pytest.mark.parametrize("password", ["", "a", "Xk9!mQ2#v", "short"])
def test_under_ten_characters_is_weak(password: str) -> None:
    _weak(password)


def test_over_256_characters_is_refused() -> None:
    _weak("Xk9!mQ2#vL" * 26)


@pytest.mark.parametrize(
    "password", ["1234567890", "1q2w3e4r5t", "1Q2W3E4R5T", "ABC1234567", "A1B2C3D4E5", "1QaZ2wSx3EdC"]
)
def test_common_passwords_are_weak_whatever_the_case(password: str) -> None:
    _weak(password)


@pytest.mark.parametrize(
    ("password", "username"),
    [("alice-rocks-2024", "alice"), ("MyALICEpass99", "Alice"), ("xx_bob.smith_xx", "BOB.SMITH")],
)
def test_containing_the_username_is_weak(password: str, username: str) -> None:
    _weak(password, username)


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", "abababababab", "abcabcabcabc", "aAaAaAaAaA", "!!!!!!!!!!!!!"])
def test_fewer_than_four_distinct_characters_is_weak(password: str) -> None:
    _weak(password)


@pytest.mark.parametrize(
    ("password", "username"),
    [
        ("correct horse battery staple", "alice"),
        ("Tr0ub4dor&3-zebra", "bob"),
        ("abcdabcdabcd", None),
        ("k" * 5 + "Xq!7" + "z" * 247, "carol"),
        ("Xk9!mQ2#vL", ""),
    ],
)
def test_good_passwords_pass(password: str, username: str | None) -> None:
    check_password_strength(password, username=username)


def test_the_error_names_the_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_password_strength("short", field="new_password")
    assert caught.value.errors is not None and "new_password" in caught.value.errors


@pytest.fixture
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same code path, cheaper cost parameters: argon2id at production cost takes ~0.4 s per call on CI."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(security, "_hasher", cheap)
    monkeypatch.setattr(security, "_DUMMY_HASH", cheap.hash(DUMMY_PASSWORD))


def test_production_hasher_is_argon2id_at_a_sane_cost() -> None:
    assert security._hasher.type is Type.ID
    assert security._hasher.memory_cost >= 19 * 1024 and security._hasher.time_cost >= 2
    assert security._DUMMY_HASH.startswith("$argon2id$")


def test_production_hash_then_verify() -> None:
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse battery staple") is True


@pytest.mark.usefixtures("cheap_argon2")
def test_hash_then_verify() -> None:
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert hashed != hash_password("correct horse battery staple")  # salted
    assert verify_password(hashed, "correct horse battery staple") is True
    assert verify_password(hashed, "correct horse battery stapl") is False
    assert verify_password(hashed, "Correct horse battery staple") is False
    assert verify_password(hashed, "") is False


@pytest.mark.usefixtures("cheap_argon2")
@pytest.mark.parametrize("password", ["anything", "", DUMMY_PASSWORD])
def test_no_hash_never_verifies(password: str) -> None:
    assert verify_password(None, password) is False


@pytest.mark.usefixtures("cheap_argon2")
@pytest.mark.parametrize("password", ["anything", DUMMY_PASSWORD])
def test_empty_hash_never_verifies(password: str) -> None:
    """An empty stored hash means "no password", exactly like None: the timing dummy's password must not unlock it."""
    assert verify_password("", password) is False


@pytest.mark.parametrize("stored", ["not-a-hash", "$argon2id$v=19$m=65536,t=3,p=4$garbage"])
def test_malformed_hash_does_not_verify(stored: str) -> None:
    assert verify_password(stored, "anything") is False
