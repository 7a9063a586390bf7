"""The Flask app factory. HTTP only: every route calls one core function."""

from __future__ import annotations

import logging

from flask import Flask, request
from flask_smorest import Api

from api.errors import problem, register_error_handlers
from api.metrics import init_metrics
from api.security import init_jwt
from core.bank import Bank
from core.settings import Settings

JSON_TYPES = ("application/json",)


def create_app(settings: Settings | None = None, bank: Bank | None = None) -> Flask:
    bank = bank or Bank(settings)
    app = Flask("bankq")
    app.config.update(
        API_TITLE="bankq",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
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

    api = Api(app)
    init_jwt(app, bank)
    init_metrics(app, bank)

    from api.routes import accounts, admin, auth, jobs, ops, transfers

    for blueprint in (auth.blp, accounts.blp, jobs.blp, transfers.blp, admin.blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(ops.blp)
    register_error_handlers(app)

    @app.before_request
    def _json_only():  # type: ignore[no-untyped-def]
        if request.method in ("POST", "PUT", "PATCH") and request.content_length:
            if request.mimetype not in JSON_TYPES:
                return problem(415, "unsupported_media_type", "Unsupported media type",
                               "Send the request body as application/json.")
        return None

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
