"""JWT wiring: token issue, revocation checks, the current user and role guards."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from flask import Flask, current_app
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    decode_token,
    get_current_user,
    get_jwt,
)

from api.errors import problem
from core.bank import Bank
from core.errors import Forbidden
from core.local_users import confirmed
from core.models import User
from core.users import STAFF, is_staff


class VerifyingOnceJWTManager(JWTManager):
    """Checks each distinct access token's signature and claims once per process, not on every request.

    A client sends the same token with every request, and verifying it (three base64 decodes with PyJWT's
    character checks, the HMAC, the JSON) was a sixth of an accepted transfer's CPU. A token that verified once
    stays valid until it expires (its signature cannot change and bankq's tokens are valid from issue on), so a
    hit only has its expiry checked again; revocation and the user's state are checked on every request as before."""

    MAX_TOKENS = 4096

    def __init__(self) -> None:
        super().__init__()
        self._verified: dict[str, dict[str, Any]] = {}

    def _decode_jwt_from_config(self, encoded_token: str, csrf_value: Any = None,
                                allow_expired: bool = False) -> dict[str, Any]:
        cacheable = csrf_value is None and not allow_expired
        if cacheable:
            hit = self._verified.get(encoded_token)
            if hit is not None and time.time() < hit["exp"]:
                return dict(hit)
        claims: dict[str, Any] = super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        if cacheable and "exp" in claims:
            if len(self._verified) >= self.MAX_TOKENS:
                self._verified.clear()  # crude but bounded: the live tokens come back on their next request
            self._verified[encoded_token] = dict(claims)
        return claims


jwt = VerifyingOnceJWTManager()


def bank() -> Bank:
    return current_app.extensions["bankq"]  # type: ignore[no-any-return]


def user_of_token(b: Bank, payload: dict[str, Any], user: User | None = None) -> User | None:
    """The token's user while the token still speaks for them: the user exists, is active, and has not been logged
    out everywhere since (a password change bumps the token version). Revocation is checked apart. `user`: the
    token's user as the caller has just looked it up (open streams share look-ups), instead of reading it here."""
    if user is None:
        user = confirmed(b.users, b.users.get(payload["sub"]), payload["sub"], lambda u: _grants(u, payload))
    return user if _grants(user, payload) else None


def _grants(user: User | None, payload: dict[str, Any]) -> bool:
    return (user is not None and user.id == payload["sub"] and user.status == "active"
            and payload.get("tv") == user.token_version)


def current_user() -> User:
    return get_current_user()  # type: ignore[no-any-return]


def issue_tokens(user: User) -> dict[str, Any]:
    claims = {"role": user.role, "tv": user.token_version}
    refresh = create_refresh_token(identity=user.id, additional_claims=claims)
    refresh_jti = decode_token(refresh)["jti"]
    access = create_access_token(identity=user.id, additional_claims={**claims, "rjti": refresh_jti})
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": bank().settings.access_token_seconds,
    }


def refreshed_access_token(user: User) -> dict[str, Any]:
    claims = get_jwt()
    access = create_access_token(
        identity=user.id, additional_claims={"role": user.role, "tv": user.token_version, "rjti": claims["jti"]}
    )
    return {"access_token": access, "token_type": "Bearer", "expires_in": bank().settings.access_token_seconds}


def revoke_current_tokens() -> None:
    claims = get_jwt()
    store = bank().revocations
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    store.revoke(claims["jti"], expires)
    if claims.get("rjti"):
        refresh_expiry = datetime.fromtimestamp(claims["exp"] + bank().settings.refresh_token_seconds, UTC)
        store.revoke(claims["rjti"], refresh_expiry)


def _role(user: User, allowed: tuple[str, ...]) -> str:
    """The user's role; one the guard would refuse is confirmed against the database (a promotion a moment ago on
    another process may not be in this process's copy yet)."""
    current = confirmed(bank().users, user, user.id, lambda u: u is not None and u.role in allowed)
    return current.role if current is not None else user.role


def staff_required(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _role(current_user(), STAFF) not in STAFF:
            raise Forbidden("Staff only.", code="forbidden")
        return fn(*args, **kwargs)

    return wrapper


def admin_required(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _role(current_user(), ("admin",)) != "admin":
            raise Forbidden("Administrators only.", code="forbidden")
        return fn(*args, **kwargs)

    return wrapper


def init_jwt(app: Flask, b: Bank) -> None:
    app.config.update(
        JWT_SECRET_KEY=b.settings.secret_key,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=b.settings.access_token_seconds),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(seconds=b.settings.refresh_token_seconds),
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ALGORITHM="HS256",
        JWT_DECODE_LEEWAY=0,
    )
    jwt.init_app(app)

    @jwt.user_lookup_loader
    def _load_user(_header: dict[str, Any], payload: dict[str, Any]) -> User | None:
        # Every authenticated request makes this check: from the process's copy of users (core.local_users).
        return user_of_token(b, payload)

    @jwt.token_in_blocklist_loader
    def _revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return b.revocations.is_revoked(payload["jti"])

    bearer = {"WWW-Authenticate": "Bearer"}

    @jwt.unauthorized_loader
    def _missing(reason: str):  # type: ignore[no-untyped-def]
        return problem(401, "token_missing", "Authentication required", reason, headers=bearer)

    @jwt.invalid_token_loader
    def _invalid(reason: str):  # type: ignore[no-untyped-def]
        return problem(401, "token_invalid", "Invalid token", reason, headers=bearer)

    @jwt.expired_token_loader
    def _expired(_h, _p):  # type: ignore[no-untyped-def]
        return problem(401, "token_expired", "Token expired", "The token has expired.", headers=bearer)

    @jwt.revoked_token_loader
    def _revoked_answer(_h, _p):  # type: ignore[no-untyped-def]
        return problem(401, "token_revoked", "Token revoked", "The token has been revoked.", headers=bearer)

    @jwt.user_lookup_error_loader
    def _no_user(_h, _p):  # type: ignore[no-untyped-def]
        return problem(
            401, "token_revoked", "Token no longer valid", "The token no longer grants access.", headers=bearer
        )

    @jwt.needs_fresh_token_loader
    def _fresh(_h, _p):  # type: ignore[no-untyped-def]
        return problem(401, "fresh_token_required", "Fresh token required", headers=bearer)

    @jwt.token_verification_failed_loader
    def _failed(_h, _p):  # type: ignore[no-untyped-def]
        return problem(401, "token_invalid", "Invalid token", headers=bearer)


__all__ = [
    "admin_required",
    "bank",
    "current_user",
    "init_jwt",
    "is_staff",
    "issue_tokens",
    "jwt",
    "refreshed_access_token",
    "revoke_current_tokens",
    "staff_required",
]
