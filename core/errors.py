"""The single error hierarchy. Each error knows its stable code and HTTP status; the API maps them once."""

from __future__ import annotations

from typing import Any


class BankqError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code:
            self.code = code
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(BankqError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(BankqError):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(BankqError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(BankqError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(BankqError):
    status, code, title = 409, "conflict", "Conflict"


class Gone(BankqError):
    status, code, title = 410, "gone", "Gone"


class ValidationFailed(BankqError):
    status, code, title = 422, "validation_error", "Validation failed"


class RateLimited(BankqError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kw: Any) -> None:
        super().__init__(detail, **kw)
        self.headers["Retry-After"] = str(max(1, int(retry_after)))


class DependencyUnavailable(BankqError):
    status, code, title = 503, "service_unavailable", "A dependency is unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **kw: Any) -> None:
        super().__init__(detail, **kw)
        self.headers["Retry-After"] = str(retry_after)


class TransientError(Exception):
    """Worth retrying later: a lock, a lost connection, a row another worker holds."""
