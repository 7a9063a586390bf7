"""CORS for browser apps on other origins (BANKQ_CORS_ORIGINS), on the JSON API only.

No origin is allowed by default, and then no Access-Control-* header is ever sent. Tokens travel in the
Authorization header, never in cookies, so credentials are not allowed; the console is same-origin and needs none."""

from __future__ import annotations

import re

from flask import Flask
from flask_cors import CORS

ALLOW_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"]
EXPOSE_HEADERS = ["Location", "Retry-After", "Idempotent-Replayed"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
PREFLIGHT_MAX_AGE = 600


def init_cors(app: Flask, origins: tuple[str, ...]) -> None:
    if not origins:
        return
    # Exact origins: flask-cors would read "[" (an IPv6 literal) or "?" as a regular expression.
    allowed = [re.compile(re.escape(origin) + r"\Z", re.IGNORECASE) for origin in origins]
    CORS(app, resources={r"/api/*": {"origins": allowed}}, allow_headers=ALLOW_HEADERS,
         expose_headers=EXPOSE_HEADERS, methods=METHODS, max_age=PREFLIGHT_MAX_AGE, supports_credentials=False)
