"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import ValidationFailed

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
_hasher = PasswordHasher()
# Verified against when the user does not exist, so both answers cost the same time.
_DUMMY_HASH = _hasher.hash("bankq-timing-equaliser")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    path = Path(__file__).parent / "data" / "common_passwords.txt"
    return frozenset(line.strip().lower() for line in path.read_text().splitlines() if line.strip())


def check_password_strength(password: str, *, field: str = "password", username: str | None = None) -> None:
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"Must be at least {MIN_PASSWORD_LENGTH} characters.")
    elif len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"Must be at most {MAX_PASSWORD_LENGTH} characters.")
    elif password.lower() in _common_passwords() or len(set(password)) < 4:
        problems.append("Is too common; choose a less guessable password.")
    elif username and username.lower() in password.lower():
        problems.append("Must not contain the username.")
    if problems:
        raise ValidationFailed("The password is too weak.", code="weak_password", errors={field: problems})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False
