"""Console sign-in: a signed session cookie that speaks for a user the way a token does.

The cookie (HttpOnly, SameSite=Lax, Secure whenever the request came over https) carries the user id, their token
version and a session id. Every request checks it with the API's own rule (api.security.user_of_token: the user is
active and not logged out everywhere since) and the session id against the revocation store, so signing out
revokes the session on every API process, as logging out revokes a token."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import Flask, g, request, session
from flask.sessions import SecureCookieSessionInterface

from api.security import bank, user_of_token
from core.errors import Forbidden, Unauthorized
from core.models import User
from core.users import STAFF

COOKIE = "bankq_console"


class ConsoleSessions(SecureCookieSessionInterface):
    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure)


class SignInRequired(Unauthorized):
    """Raised by a page that needs a signed-in person: the console answers with the sign-in page."""


def init_sessions(app: Flask, secret_key: str, lifetime_seconds: int) -> None:
    # Its own key, derived from the one that signs tokens: a session cookie can never pass for a token.
    app.secret_key = hmac.new(secret_key.encode(), b"bankq console session", hashlib.sha256).hexdigest()
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=lifetime_seconds,
    )


def claims() -> dict[str, Any] | None:
    """The session as the claims of a token (sub, tv, jti, exp): what api.streams.token_check reads."""
    if not {"uid", "tv", "sid", "exp"} <= session.keys():
        return None
    return {"sub": session["uid"], "tv": session["tv"], "jti": session["sid"], "exp": session["exp"]}


def load_user() -> User | None:
    """The signed-in user, once per request; None when there is none, the session expired or was revoked."""
    if "user" in g:
        return g.user  # type: ignore[no-any-return]
    found = claims()
    user = None
    if found is not None and time.time() < float(found["exp"]):
        b = bank()
        user = user_of_token(b, found)
        if user is not None and b.revocations.is_revoked(found["jti"]):
            user = None
    if user is None and found is not None:
        session.clear()
    g.user = user
    return user


def sign_in(user: User) -> None:
    lifetime = bank().settings.console_session_seconds
    session.clear()  # a new session id (and CSRF token) at every sign-in: no session fixation
    session.permanent = True
    session.update(uid=user.id, tv=user.token_version, sid=uuid.uuid4().hex, exp=int(time.time()) + lifetime)
    g.user = user


def sign_out() -> None:
    found = claims()
    if found is not None:
        bank().revocations.revoke(found["jti"], datetime.fromtimestamp(float(found["exp"]), UTC))
    session.clear()
    g.user = None


def current() -> User:
    user = load_user()
    if user is None:
        raise SignInRequired("Please sign in.", code="sign_in_required")
    return user


def signed_in(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current()
        return fn(*args, **kwargs)

    return wrapper


def customer_only(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current().role != "customer":
            raise Forbidden("This page is for customers.", code="forbidden")
        return fn(*args, **kwargs)

    return wrapper


def staff_only(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The API's staff_required, for pages."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current().role not in STAFF:
            raise Forbidden("Staff only.", code="forbidden")
        return fn(*args, **kwargs)

    return wrapper


def admin_only(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The API's admin_required, for pages."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current().role != "admin":
            raise Forbidden("Administrators only.", code="forbidden")
        return fn(*args, **kwargs)

    return wrapper
