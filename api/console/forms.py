"""Forms: what a person typed, checked by the JSON API's own schemas, and the Idempotency-Key each form carries.

Every job form gets a fresh key when it is rendered (a hidden field), so a double click, a reload or a resubmit of
the same page sends the same key and the bank accepts the request once. A form shown again after an error gets a
new key: the refused request wrote nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from api.errors import _flatten
from core.errors import BankqError, Conflict, ValidationFailed
from core.idempotency import Accepted, check_key

KEY_FIELD = "idempotency_key"
IN_USE_PATIENCE_SECONDS = 5.0


def new_key() -> str:
    return f"console-{uuid.uuid4().hex}"


def submitted(names: Iterable[str]) -> dict[str, str]:
    """The named fields as typed; an empty field is a field not given (optional fields stay optional)."""
    values = {}
    for name in names:
        value = request.form.get(name, "")
        if value.strip() != "":
            values[name] = value.strip() if name not in ("password", "new_password") else value
    return values


def load(schema: Schema, values: dict[str, Any]) -> dict[str, Any]:
    """The API's validation, with its messages, for a form: a ValidationFailed (422) the page shows per field."""
    try:
        return schema.load(values)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ValidationFailed("Please correct the fields marked below.", errors=_flatten(exc.messages)) from exc


def form_key() -> str:
    """The key the form was rendered with; a form without one is malformed (400, nothing written)."""
    return check_key(request.form.get(KEY_FIELD))


def accept_once(accept: Callable[[], Accepted]) -> Accepted:
    """A double click sends the same key twice at once: the second request waits for the first to be accepted, then
    gets its answer (the same job), instead of a 409 for the person to make sense of."""
    deadline = time.monotonic() + IN_USE_PATIENCE_SECONDS
    while True:
        try:
            return accept()
        except Conflict as exc:
            if exc.code != "idempotency_key_in_use" or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def field_errors(exc: BankqError) -> dict[str, list[str]]:
    return dict(exc.errors or {})
