"""The web console at `/`: server-rendered pages for customers and staff, progressively enhanced with htmx.

Pages call the same core functions as the JSON API, under the same role rules, and check input with the API's
own schemas. Every form carries a CSRF token (Flask-WTF); every page is served with a Content-Security-Policy that
allows no inline script; errors are pages, never a stack trace. The JSON API keeps its problem documents."""

from __future__ import annotations

import logging

from flask import Flask, Response, render_template, request
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from api.console import formatting, views_customer, views_jobs, views_public, views_staff  # noqa: F401 - routes
from api.console.blueprint import blp
from api.console.sessions import SignInRequired, init_sessions, load_user
from api.errors import from_http_exception
from core.bank import Bank
from core.errors import BankqError
from core.money import CURRENCIES

log = logging.getLogger(__name__)
csrf = CSRFProtect()

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
NOT_CONSOLE = ("/api/", "/health", "/ready", "/metrics")
# Endpoints whose form carries a file: the upload limit, not the JSON body limit, applies (api.create_app).
UPLOAD_ENDPOINTS = {"console.kyc_upload"}
TITLES = {400: "Bad request", 403: "Not allowed", 404: "Page not found", 405: "Not allowed here",
          409: "Conflict", 410: "Gone", 413: "Too large", 415: "Unsupported file", 422: "Please check the form",
          429: "Too many attempts", 500: "Something went wrong", 503: "Temporarily unavailable"}


def is_console_path(path: str) -> bool:
    return not path.startswith(NOT_CONSOLE)


def error_page(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = render_template("console/error.html", status=status, title=TITLES.get(status, "Error"), detail=detail)
    response = Response(body, status=status, mimetype="text/html")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _sign_in_page() -> Response:
    from flask import redirect, url_for

    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("console.sign_in_form", next=target), code=303)  # type: ignore[return-value]


# Blueprint hooks are set once, at import: a blueprint refuses new ones after its first registration.
@blp.errorhandler(SignInRequired)
def _sign_in(_exc: SignInRequired) -> Response:
    if request.headers.get("HX-Request") == "true" or request.path.endswith("/events"):
        return error_page(401, "Your session has ended; please sign in again.")
    return _sign_in_page()

@blp.errorhandler(CSRFError)
def _csrf(exc: CSRFError) -> Response:
    return error_page(400, "This form was not sent from a page of this site, or it expired. Go back, reload "
                           "the page and try again. Nothing was done.")

@blp.errorhandler(RateLimitExceeded)
def _too_many(exc: RateLimitExceeded) -> Response:
    return error_page(429, "Too many attempts from here. Wait a minute and try again.", {"Retry-After": "60"})

@blp.errorhandler(BankqError)
def _bankq(exc: BankqError) -> Response:
    if exc.status >= 500:
        log.warning("dependency failure: %s", exc.detail)
    return error_page(exc.status, exc.detail, exc.headers)

@blp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Response:
    return error_page(exc.code or 500, exc.description or "")

@blp.errorhandler(OperationalError)
@blp.errorhandler(PoolTimeout)
def _db_down(exc: Exception) -> Response:
    log.warning("database unavailable: %s", getattr(exc, "orig", None) or exc)
    return error_page(503, "The bank's database is not answering. Try again in a few seconds.",
                      {"Retry-After": "5"})

@blp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error in the console")
    return error_page(500, "Something went wrong on our side. Nothing you did caused it; please try again.")

@blp.before_request
def _csrf_on_every_form() -> None:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()

@blp.app_context_processor
def _people() -> dict[str, object]:
    try:
        user = load_user() if is_console_path(request.path) else None
    except Exception:  # an error page while the database is away still renders, signed out
        user = None
    return {"user": user, "time_zone": user.time_zone if user else "UTC"}


def _unrouted(exc: HTTPException) -> Response:
    """Paths no blueprint owns: a page for a person, a problem document for the API."""
    if is_console_path(request.path):
        return error_page(exc.code or 404, "There is no such page." if exc.code == 404 else exc.description or "")
    return from_http_exception(exc)


def init_console(app: Flask, bank: Bank) -> None:
    init_sessions(app, bank.settings.secret_key, bank.settings.console_session_seconds)
    app.config.update(WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=bank.settings.console_session_seconds)
    csrf.init_app(app)
    app.register_error_handler(404, _unrouted)
    app.register_error_handler(405, _unrouted)
    app.jinja_env.globals["currency_options"] = [(code, code) for code in sorted(CURRENCIES)]
    for name in ("money", "local_time", "kind_words", "status_words", "error_words", "reason_words", "check_words"):
        app.jinja_env.filters[name] = getattr(formatting, name)

    @app.after_request
    def _page_headers(response: Response) -> Response:
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    app.register_blueprint(blp)
