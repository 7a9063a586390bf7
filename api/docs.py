"""Swagger UI from bankq itself: the assets of the pinned swagger-ui-bundle package, so /api/v1/docs works offline.

flask-smorest renders the page (OPENAPI_SWAGGER_UI_URL points here); its one inline script is allowed by its hash,
so the page's Content-Security-Policy needs no 'unsafe-inline' for scripts."""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Blueprint, Flask, Response, abort, request, send_from_directory
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = "/api/v1/docs/assets/"
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
                    "favicon-16x16.png", "favicon-32x32.png"})
DOCS_ENDPOINT = "api-docs.openapi_swagger_ui"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)

blp = Blueprint("docs_assets", __name__)


@blp.get(f"{ASSETS_URL}<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    return send_from_directory(str(swagger_ui_path), name, max_age=24 * 3600)


def docs_policy(body: bytes) -> str:
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(body)
    )
    return (f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def init_docs(app: Flask) -> None:
    app.config["OPENAPI_SWAGGER_UI_URL"] = ASSETS_URL
    app.register_blueprint(blp)

    @app.after_request
    def _docs_policy(response: Response) -> Response:
        if request.endpoint == DOCS_ENDPOINT and response.status_code == 200:
            response.headers["Content-Security-Policy"] = docs_policy(response.get_data())
        return response
