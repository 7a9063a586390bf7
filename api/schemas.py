"""Request and response shapes (marshmallow). Unknown fields are refused; amounts are strings only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from core.audit import ACTIONS as AUDIT_ACTIONS
from core.jobs import STATUSES
from tasks.publisher import WORKERS_STATUSES

ID = {"validate": validate.Length(min=1, max=64)}
USERNAME = validate.Regexp(r"^[A-Za-z0-9_.-]{3,64}$", error="3-64 letters, digits, '_', '.' or '-'.")
PHONE = validate.Regexp(r"^\+?[0-9][0-9 ()-]{4,30}$", error="Not a phone number.")
CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="An ISO 4217 code such as EUR.")
TIME_ZONE = {
    "validate": validate.Length(min=1, max=64),
    "metadata": {
        "description": "An IANA time zone name such as Europe/Berlin, used only to show times in local time; "
        "every time is stored in UTC.",
        "example": "Europe/Berlin",
    },
}


def _storable(value: Any) -> bool:
    """PostgreSQL text cannot hold NUL and UTF-8 cannot encode a lone surrogate: both would fail at INSERT (a 500)."""
    values = value if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, str):
            if "\x00" in item:
                return False
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def _utc_representable(value: datetime) -> None:
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValidationError("Out of range.") from exc


class Strict(Schema):
    class Meta:
        unknown = RAISE
        ordered = True

    @pre_load
    def _refuse_unstorable_strings(self, data: Any, **_: object) -> Any:
        if isinstance(data, Mapping):
            errors = {str(key): ["Must not contain NUL characters or unpaired surrogates."]
                      for key in data if not _storable(data[key])}
            if errors:
                raise ValidationError(errors)
        return data


class Problem(Schema):
    """RFC 9457 problem details, the body of every error (see api.errors.problem)."""

    class Meta:
        unknown = INCLUDE  # some problems carry extra members, e.g. attempts_remaining

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True, metadata={"description": "Stable snake_case machine code."})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class RegisterIn(Strict):
    username = fields.String(required=True, validate=USERNAME)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256), load_only=True)
    full_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    date_of_birth = fields.Date(allow_none=True)
    phone = fields.String(allow_none=True, validate=PHONE)
    time_zone = fields.String(load_default="UTC", **TIME_ZONE)


class ProfileIn(Strict):
    full_name = fields.String(validate=validate.Length(min=1, max=200))
    phone = fields.String(allow_none=True, validate=PHONE, metadata={"description": "null removes the number."})
    time_zone = fields.String(**TIME_ZONE)
    monthly_statements = fields.Boolean(
        metadata={"description": "false stops the monthly PDF statement email (on by default)."}
    )


class AdminUserIn(RegisterIn):
    role = fields.String(required=True, validate=validate.OneOf(["customer", "teller", "admin"]))


class LoginIn(Strict):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256), load_only=True)


class TokensOut(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class UserOut(Schema):
    id = fields.String()
    username = fields.String()
    email = fields.String()
    full_name = fields.String()
    date_of_birth = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    time_zone = fields.String(metadata={"description": "IANA name; times are shown in it, stored in UTC."})
    monthly_statements = fields.Boolean(metadata={"description": "Whether a monthly statement is emailed."})
    role = fields.String()
    kyc_status = fields.String()
    status = fields.String()
    created_at = fields.String()


class LimitOut(Schema):
    currency = fields.String()
    daily = fields.String(allow_none=True, metadata={"description": "Per UTC day; null: no limit."})
    monthly = fields.String(allow_none=True, metadata={"description": "Per calendar month (UTC); null: no limit."})
    daily_remaining = fields.String(allow_none=True, metadata={"description": "What may still go out today."})
    monthly_remaining = fields.String(allow_none=True, metadata={"description": "What may still go out this month."})


class MeOut(UserOut):
    limits = fields.List(
        fields.Nested(LimitOut),
        metadata={"description": "A customer's outgoing transfer limits, one per currency they hold an account in "
                  "or have limits for; empty for staff."},
    )


class PageArgs(Strict):
    limit = fields.Integer(load_default=None, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))


class AccountIn(Strict):
    currency = fields.String(required=True, validate=CURRENCY)
    type = fields.String(required=True, validate=validate.OneOf(["checking", "savings"]))
    owner_id = fields.String(allow_none=True, **ID)


class AccountListArgs(PageArgs):
    owner_id = fields.String(load_default=None, **ID)


class AccountOut(Schema):
    id = fields.String()
    number = fields.String()
    owner_id = fields.String(allow_none=True)
    currency = fields.String()
    type = fields.String()
    status = fields.String()
    balance = fields.String()
    available_balance = fields.String()
    created_at = fields.String()


class AccountPage(Schema):
    items = fields.List(fields.Nested(AccountOut))
    next_cursor = fields.String(allow_none=True)


class EntryOut(Schema):
    id = fields.String()
    transfer_id = fields.String()
    amount = fields.String(metadata={"description": "Signed decimal string; negative leaves the account."})
    balance_after = fields.String()
    currency = fields.String()
    description = fields.String(allow_none=True)
    posted_at = fields.String()


class EntryPage(Schema):
    items = fields.List(fields.Nested(EntryOut))
    next_cursor = fields.String(allow_none=True)


class JobError(Schema):
    code = fields.String()
    message = fields.String()


class JobLinks(Schema):
    self = fields.String()
    resource = fields.String(allow_none=True)


class JobOut(Schema):
    id = fields.String()
    kind = fields.String()
    status = fields.String(metadata={"enum": list(STATUSES)})
    created_at = fields.String()
    updated_at = fields.String()
    attempts = fields.Integer()
    result = fields.Dict(allow_none=True)
    error = fields.Nested(JobError, allow_none=True)
    links = fields.Nested(JobLinks)


class JobPage(Schema):
    items = fields.List(fields.Nested(JobOut))
    next_cursor = fields.String(allow_none=True)


class JobListArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    kind = fields.String(load_default=None, validate=validate.Length(max=32))


AMOUNT = fields.String(required=True, validate=validate.Length(min=1, max=40), metadata={
    "description": "Decimal string in major units, at most the currency's minor digits, e.g. \"125.50\".",
    "example": "125.50"})


class TransferIn(Strict):
    source_account_id = fields.String(required=True, **ID)
    destination_account_id = fields.String(**ID)
    destination_account_number = fields.String(validate=validate.Length(min=1, max=34))
    amount = fields.String(required=True, validate=validate.Length(min=1, max=40), metadata={
        "description": "Decimal string in major units, e.g. \"125.50\".", "example": "125.50"})
    currency = fields.String(required=True, validate=CURRENCY)
    description = fields.String(allow_none=True, validate=validate.Length(max=500))
    execute_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC, validate=_utc_representable)

    @validates_schema
    def _one_destination(self, data: dict, **_: object) -> None:
        if bool(data.get("destination_account_id")) == bool(data.get("destination_account_number")):
            raise ValidationError("Give exactly one of destination_account_id and destination_account_number.",
                                  "destination_account_id")


class MovementIn(Strict):
    account_id = fields.String(required=True, **ID)
    amount = fields.String(required=True, validate=validate.Length(min=1, max=40), metadata={
        "description": "Decimal string in major units, e.g. \"125.50\".", "example": "125.50"})
    currency = fields.String(required=True, validate=CURRENCY)
    description = fields.String(allow_none=True, validate=validate.Length(max=500))


class TransferOut(Schema):
    id = fields.String()
    job_id = fields.String()
    kind = fields.String()
    status = fields.String()
    source_account_id = fields.String()
    destination_account_id = fields.String()
    amount = fields.String()
    currency = fields.String()
    description = fields.String(allow_none=True)
    failure_code = fields.String(allow_none=True)
    batch_index = fields.Integer(
        allow_none=True, metadata={"description": "Its place in a batch (job_id is the batch's job); else null."}
    )
    reverses = fields.String(
        allow_none=True, metadata={"description": "For a reversal (kind `reversal`): the transfer it undoes."}
    )
    reversed_by = fields.String(
        allow_none=True,
        metadata={"description": "The reversal of this transfer that is pending or posted; null if none (a failed "
                  "reversal does not count, and the transfer may be reversed again)."},
    )
    execute_at = fields.String(allow_none=True)
    created_at = fields.String()
    posted_at = fields.String(allow_none=True)


class ReversalIn(Strict):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Why (1-200 characters); shown on both statements as \"Reversal: <reason>\" and "
                  "kept in the audit trail.", "example": "Duplicate payment"},
    )


class LedgerCheckOut(Schema):
    ok = fields.Boolean()
    accounts_checked = fields.Integer()
    mismatches = fields.List(fields.Dict())


class ConfirmIn(Strict):
    code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$", error="Six digits."))


AUDIT_ACTIONS_TEXT = "\n".join(f"- `{action}`: {meaning}" for action, meaning in AUDIT_ACTIONS.items())


class AuditArgs(PageArgs):
    action = fields.String(
        load_default=None,
        validate=validate.OneOf(list(AUDIT_ACTIONS)),
        metadata={"description": "Only events of this action (an unknown action is a 422):\n" + AUDIT_ACTIONS_TEXT},
    )


class AuditEventOut(Schema):
    id = fields.String()
    actor_id = fields.String(allow_none=True)
    action = fields.String(
        validate=validate.OneOf(list(AUDIT_ACTIONS)),
        metadata={"description": "What happened:\n" + AUDIT_ACTIONS_TEXT},
    )
    target = fields.String(allow_none=True)
    at = fields.String()
    details = fields.Dict(allow_none=True)


class AuditPage(Schema):
    items = fields.List(fields.Nested(AuditEventOut))
    next_cursor = fields.String(allow_none=True)


class QueueOut(Schema):
    name = fields.String()
    depth = fields.Integer(metadata={"description": "Jobs queued and due on this queue (from the database)."})
    oldest_age_seconds = fields.Float(metadata={"description": "Age of the oldest of them."})


class QueuesOut(Schema):
    queues = fields.List(fields.Nested(QueueOut))
    workers = fields.List(
        fields.String(),
        allow_none=True,
        metadata={
            "description": "Workers that answered a ping just now. `[]`: the broker was asked and no worker "
            "answered. `null`: nobody could be asked (see `workers_status`), which says nothing about the workers."
        },
    )
    workers_status = fields.String(
        validate=validate.OneOf(WORKERS_STATUSES),
        metadata={
            "description": "`answered`: `workers` lists them. `none_answered`: no worker answered the ping in time. "
            "`no_remote_control`: unknown, the embedded (filesystem) broker cannot ping workers. "
            "`broker_unavailable`: unknown, the broker did not take the ping."
        },
    )
    workers_note = fields.String(metadata={"description": "The same, in words, for a person."})
