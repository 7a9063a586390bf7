"""The console's blueprint and what every page shares: rendering, redirects, the bank, the signed-in user."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request, url_for

from api.console.sessions import current, load_user
from api.security import bank

blp = Blueprint("console", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")


def page(template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> Response:
    response = Response(render_template(f"console/{template}", **context), status=status, mimetype="text/html")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def go(endpoint: str, **values: Any) -> Response:
    """POST, then redirect, then GET: a reload of the page the person lands on posts nothing again."""
    return redirect(url_for(f"console.{endpoint}", **values), code=303)  # type: ignore[return-value]


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: never an open redirect to somebody else's sign-in look-alike."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if len(target) > 2000 or not target.isprintable():
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def wants_fragment() -> bool:
    return request.headers.get("HX-Request") == "true"


__all__ = ["bank", "blp", "current", "go", "load_user", "page", "safe_next", "wants_fragment"]
