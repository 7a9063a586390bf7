"""The Flask app factory. HTTP only: every route calls one core function."""

from __future__ import annotations

import http
import logging

from flask import Flask, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from api.console import UPLOAD_ENDPOINTS as CONSOLE_UPLOADS
from api.console import init_console
from api.cors import init_cors
from api.docs import ASSETS_URL, init_docs
from api.errors import PROBLEM, problem, register_error_handlers
from api.limits import init_limits
from api.metrics import init_metrics
from api.routes.kyc import UPLOAD_LIMIT
from api.schemas import Problem
from api.security import init_jwt
from api.streams import init_streams
from core.bank import Bank
from core.errors import NotFound
from core.settings import Settings
from tasks.publisher import publish_soon

JSON_TYPES = ("application/json",)
UPLOAD_ENDPOINTS = {"kyc.upload_document", *CONSOLE_UPLOADS}
# The longest URL (path and query string, as sent) the API takes. gunicorn's request-line limit (api.gunicorn_conf)
# sits just above it, so every URL up to this length reaches Flask, and a longer one still gets a problem document.
MAX_URL_BYTES = 8000


def url_length(environ: dict) -> int:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        raw = f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"
    return len(raw)  # WSGI strings hold the bytes as latin-1: one character per byte


class ProblemApi(Api):
    """flask-smorest documents its own error body ({code: int, status, message}) as application/json; every error
    bankq sends is an RFC 9457 problem document (api.errors), so the OpenAPI document says that instead."""

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = Problem
            prepare_response(response, self.spec, PROBLEM)
            self.spec.components.response(status.name, response, lazy=True)
        default: dict = {"description": "Error: an RFC 9457 problem document", "schema": Problem}
        prepare_response(default, self.spec, PROBLEM)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


def create_app(settings: Settings | None = None, bank: Bank | None = None) -> Flask:
    bank = bank or Bank(settings)
    bank.db.publisher = publish_soon  # what a request commits to the outbox is sent just after, in the background
    # The package, never the project name: in a checkout folder named bankq, "bankq" is a namespace package.
    app = Flask(__name__)
    app.config.update(
        API_TITLE="bankq",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=ASSETS_URL,
        MAX_CONTENT_LENGTH=bank.settings.max_request_bytes,
        PROPAGATE_EXCEPTIONS=False,
        API_SPEC_OPTIONS={
            "info": {"description": "bankq: asynchronous transaction processing. Errors are RFC 9457 problem "
                                    "documents with a stable `code`."},
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                              "bearerFormat": "JWT"}}},
        },
    )
    app.extensions["bankq"] = bank
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    api = ProblemApi(app)
    init_jwt(app, bank)
    init_metrics(app, bank)
    init_streams(app, bank)

    @app.before_request
    def _url_not_too_long():  # type: ignore[no-untyped-def]
        # Before routing errors, rate limits and auth: the answer to an over-long URL does not depend on it.
        if url_length(request.environ) > MAX_URL_BYTES:
            return problem(414, "uri_too_long", "URI too long",
                           f"The URL (path and query string) is longer than {MAX_URL_BYTES} bytes.")
        return None

    from api.routes import accounts, admin, auth, jobs, kyc, notifications, ops, otp, transfers

    for blueprint in (auth.blp, accounts.blp, jobs.blp, transfers.blp, kyc.blp, notifications.blp, otp.blp, admin.blp):
        api.register_blueprint(blueprint)
    from api.routes import customers, events, reminders, standing_orders, webhooks

    api.register_blueprint(reminders.blp)
    api.register_blueprint(standing_orders.blp)
    api.register_blueprint(customers.blp)
    api.register_blueprint(events.blp)
    api.register_blueprint(webhooks.blp)
    from api.routes import loans, reports

    api.register_blueprint(reports.blp)
    api.register_blueprint(loans.blp)
    app.register_blueprint(ops.blp)
    init_docs(app)
    init_console(app, bank)
    init_cors(app, bank.settings.cors_origins)
    init_limits(app, bank)
    register_error_handlers(app)

    @app.url_value_preprocessor
    def _ids_are_text(_endpoint, values):  # type: ignore[no-untyped-def]
        # No id holds a NUL; PostgreSQL would refuse the look-up with a 500.
        if values and any(isinstance(v, str) and "\x00" in v for v in values.values()):
            raise NotFound("No such resource.")

    @app.before_request
    def _json_only():  # type: ignore[no-untyped-def]
        if request.endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = UPLOAD_LIMIT
            if request.blueprint == "console":  # the page says what is missing
                return None
            if request.method == "POST" and request.mimetype != "multipart/form-data":
                return problem(415, "unsupported_media_type", "Unsupported media type",
                               "Send the document as multipart/form-data.")
            return None
        if request.blueprint == "console":  # HTML forms (urlencoded); the console answers in pages
            return None
        if request.method in ("POST", "PUT", "PATCH") and request.content_length:
            if request.mimetype not in JSON_TYPES:
                return problem(415, "unsupported_media_type", "Unsupported media type",
                               "Send the request body as application/json.")
            # Reading the body enforces MAX_CONTENT_LENGTH (413) even on routes that ignore it.
            request.get_data(cache=True)
        return None

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
