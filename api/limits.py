"""Rate limits on the endpoints worth guessing at (Flask-Limiter): per client IP, per username, per user.

Counters live in Redis on the real stack (shared by every API process) and in memory on the embedded default.
If Redis stops answering, each process counts in memory until it is back; a limiter error never fails a request.
Limits come from the environment (e.g. BANKQ_RATE_LIMIT_LOGIN="60 per minute") into app.config, and are read
from app.config on every request, so a test can tighten one on its app.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable

from flask import Flask, Response, current_app, request
from flask_jwt_extended import decode_token
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from api.errors import problem
from core.bank import Bank

# config name -> default; each may be overridden by the environment variable of the same name.
DEFAULTS = {
    "BANKQ_RATE_LIMIT_LOGIN": "60 per minute",  # per IP
    "BANKQ_RATE_LIMIT_LOGIN_USERNAME": "20 per minute",  # per username, from any number of IPs
    "BANKQ_RATE_LIMIT_REGISTER": "30 per minute",  # per IP
    "BANKQ_RATE_LIMIT_PASSWORD_RESET": "20 per minute",  # per IP, request and confirm each
    "BANKQ_RATE_LIMIT_OTP": "10 per minute",  # per user: requesting codes (core allows 5 per 15 minutes anyway)
    "BANKQ_RATE_LIMIT_OTP_VERIFY": "30 per minute",  # per IP (core allows 5 tries per code anyway)
}
ENABLED = "BANKQ_RATE_LIMITS_ENABLED"


def _namespace() -> str:
    """Test apps (TESTING) count apart, so tests sharing one Redis do not spend each other's allowance."""
    return f"{current_app.extensions['bankq_limits']}:" if current_app.testing else ""


def by_ip() -> str:
    return f"{_namespace()}ip:{get_remote_address() or '-'}"


def by_username() -> str:
    """The username tried, from the JSON body (API) or the form (console), so both count against one name."""
    body = request.get_json(silent=True) if request.is_json else request.form
    name = body.get("username") if isinstance(body, dict) else None  # a form's MultiDict is a dict too
    return f"{_namespace()}username:{name.strip().lower()[:64]}" if isinstance(name, str) and name.strip() else by_ip()


def by_user() -> str:
    """The token's subject once its signature checks out; a request without a valid token counts by IP (and is
    answered 401 by the route)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        try:
            return f"{_namespace()}user:{decode_token(header[7:])['sub']}"
        except Exception:  # expired, forged, malformed: not a user
            pass
    return by_ip()


def counts(response: Response) -> bool:
    """Every attempt that reached the service counts, failed or not (a wrong password, a wrong code, a taken
    username). A request refused for its shape (bad JSON, schema errors) tried nothing and is not counted, nor
    is the limiter's own 429. (Counting after the answer lets a burst of concurrent requests overshoot a
    little: the hard limits on guessing are in core, 5 tries per code and the login lockout.)"""
    if response.status_code in (400, 413, 415):
        return False
    if response.status_code in (422, 429):
        body = response.get_json(silent=True)
        return not (isinstance(body, dict) and body.get("code") in ("validation_error", "rate_limited"))
    return True


def _configured(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


# endpoint -> [(limit name, key)]
LIMITS: dict[str, list[tuple[str, Callable[[], str]]]] = {
    "auth.login": [("BANKQ_RATE_LIMIT_LOGIN", by_ip), ("BANKQ_RATE_LIMIT_LOGIN_USERNAME", by_username)],
    "auth.register": [("BANKQ_RATE_LIMIT_REGISTER", by_ip)],
    "auth.request_password_reset": [("BANKQ_RATE_LIMIT_PASSWORD_RESET", by_ip)],
    "auth.confirm_password_reset": [("BANKQ_RATE_LIMIT_PASSWORD_RESET", by_ip)],
    "otp.request_code": [("BANKQ_RATE_LIMIT_OTP", by_user)],
    "otp.verify_code": [("BANKQ_RATE_LIMIT_OTP_VERIFY", by_ip)],
    # The console's forms are the same doors: the same limits (each POST is its own endpoint, so viewing the form
    # spends nothing).
    "console.sign_in_submit": [("BANKQ_RATE_LIMIT_LOGIN", by_ip), ("BANKQ_RATE_LIMIT_LOGIN_USERNAME", by_username)],
    "console.sign_up_submit": [("BANKQ_RATE_LIMIT_REGISTER", by_ip)],
    "console.password_reset_submit": [("BANKQ_RATE_LIMIT_PASSWORD_RESET", by_ip)],
    "console.password_reset_confirm_submit": [("BANKQ_RATE_LIMIT_PASSWORD_RESET", by_ip)],
}


def init_limits(app: Flask, bank: Bank) -> Limiter:
    """Call after the blueprints are registered: the limits wrap their view functions."""
    for name, default in DEFAULTS.items():
        app.config.setdefault(name, os.environ.get(name) or default)
    enabled = os.environ.get(ENABLED, "true").strip().lower() not in ("0", "false", "no", "off")
    app.extensions["bankq_limits"] = uuid.uuid4().hex
    storage = bank.settings.redis_url or "memory://"
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=storage,
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1} if storage != "memory://" else {},
        strategy="moving-window",
        key_prefix="bankq-limits",
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        headers_enabled=False,
        enabled=enabled,
    )
    for endpoint, limits in LIMITS.items():
        view = app.view_functions[endpoint]
        for name, key in limits:
            view = limiter.limit(_configured(name), key_func=key, deduct_when=counts)(view)
        app.view_functions[endpoint] = view

    @app.errorhandler(RateLimitExceeded)
    def _too_many(exc: RateLimitExceeded):  # type: ignore[no-untyped-def]
        retry_after = 60
        try:
            current = limiter.current_limit
            if current is not None:
                window = current.limit.get_expiry()
                retry_after = min(window, max(1, math.ceil(current.reset_at - time.time())))
        except Exception:  # the storage went away between the hit and this answer
            pass
        return problem(
            429,
            "rate_limited",
            "Too many requests",
            f"Too many requests ({exc.description}); try again later.",
            headers={"Retry-After": str(retry_after)},
        )

    return limiter
