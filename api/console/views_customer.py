"""A customer's pages: accounts and statements, transfers, identity documents, messages, schedules, profile."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request

from api.console.blueprint import bank, blp, current, go, page
from api.console.forms import KEY_FIELD, accept_once, form_key, load, new_key, submitted
from api.console.sessions import customer_only, signed_in
from api.schemas import AccountIn, ProfileIn, TransferIn
from api.schemas_kyc import DocumentForm
from api.schemas_schedules import ReminderIn, StandingOrderIn
from core import accounts, jobs, notifications, reminders, standing_orders, transfers, users
from core.errors import BankqError, NotFound, ValidationFailed
from core.kyc import documents
from core.time_zones import known_zones, zone
from core.users import is_staff

PAGE_SIZE = 25
TRANSFER_FIELDS = ("source_account_id", "destination_account_id", "destination_account_number", "amount",
                   "description", "execute_at")
REMINDER_FIELDS = ("message", "remind_at", "channel", "repeat")
ORDER_FIELDS = ("source_account_id", "destination_account_id", "destination_account_number", "amount", "frequency",
                "start_date", "end_date", "description")


def own_accounts() -> list[dict[str, Any]]:
    return list(accounts.list_accounts(bank().db, current(), owner_id=None, limit=500, cursor=None)["items"])


def with_source_currency(values: dict[str, str]) -> dict[str, str]:
    """A payment is in its source account's currency (the API refuses any other): the form does not ask. A source
    that is not the customer's own is a 404, as in the API."""
    if "source_account_id" not in values:
        return values
    for held in own_accounts():
        if held["id"] == values["source_account_id"]:
            return {**values, "currency": held["currency"]}
    raise NotFound("No such account.", code="account_not_found")


def local_to_utc(values: dict[str, str], name: str) -> None:
    """A datetime-local field means the person's own wall-clock time; the API takes RFC 3339."""
    if name not in values:
        return
    try:
        local = datetime.fromisoformat(values[name])
    except ValueError:
        raise ValidationFailed("Please correct the fields marked below.",
                               errors={name: ["A date and time such as 2026-12-01 09:30."]}) from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone(current().time_zone))
    values[name] = local.isoformat()


@blp.get("/")
@signed_in
def home():  # type: ignore[no-untyped-def]
    user = current()
    if is_staff(user):
        return page("staff_home.html")
    recent = jobs.list_jobs(bank().db, user, status=None, kind=None, limit=10, cursor=None)["items"]
    me = users.me(bank().db, bank().settings, user)
    return page("home.html", accounts=own_accounts(), jobs=recent, me=me)


@blp.post("/accounts")
@customer_only
def open_account():  # type: ignore[no-untyped-def]
    values = submitted(("currency", "type"))
    try:
        body = load(AccountIn(), values)
        opened = accounts.open_account(bank().db, current(), body["currency"], body["type"])
    except BankqError as exc:
        recent = jobs.list_jobs(bank().db, current(), status=None, kind=None, limit=10, cursor=None)["items"]
        return page("home.html", status=exc.status, error=exc.detail, errors=exc.errors, accounts=own_accounts(),
                    jobs=recent, me=users.me(bank().db, bank().settings, current()))
    return go("account", account_id=opened["id"])


@blp.get("/accounts/<account_id>")
@signed_in
def account(account_id: str):  # type: ignore[no-untyped-def]
    cursor = request.args.get("cursor") or None
    shown = accounts.get_account(bank().db, current(), account_id)
    lines = accounts.statement(bank().db, current(), account_id, limit=PAGE_SIZE, cursor=cursor)
    return page("account.html", account=shown, lines=lines, first_page=cursor is None)


def _transfer_form(status: int = 200, **context: Any):  # type: ignore[no-untyped-def]
    mine = own_accounts()
    values = context.pop("values", None) or {"source_account_id": request.args.get("source", "")}
    return page("transfer.html", status=status, accounts=mine, values=values, key=new_key(), **context)


@blp.get("/transfers/new")
@customer_only
def transfer_form():  # type: ignore[no-untyped-def]
    return _transfer_form()


@blp.post("/transfers")
@customer_only
def transfer_submit():  # type: ignore[no-untyped-def]
    values = submitted(TRANSFER_FIELDS)
    try:
        key = form_key()
        body = with_source_currency(values)
        local_to_utc(body, "execute_at")
        loaded = load(TransferIn(), body)
        accepted = accept_once(lambda: transfers.request_transfer(
            bank(), current(), transfers.TransferRequest(**loaded), idempotency_key=key, body=body))
    except BankqError as exc:
        return _transfer_form(status=exc.status, error=exc.detail, errors=exc.errors, values=values)
    return go("job", job_id=accepted.body["id"])


@blp.post("/transfers/<transfer_id>/confirm")
@customer_only
def transfer_confirm(transfer_id: str):  # type: ignore[no-untyped-def]
    code = request.form.get("code", "").strip()
    shown = transfers.get_transfer(bank(), current(), transfer_id)
    try:
        if not (len(code) == 6 and code.isdigit()):
            raise ValidationFailed("The code is six digits.", errors={"code": ["Six digits, from the message."]})
        transfers.confirm_transfer(bank(), current(), transfer_id, code)
    except BankqError as exc:
        from api.console.views_jobs import job_page

        remaining = exc.extra.get("attempts_remaining")
        detail = exc.detail if remaining is None else f"{exc.detail} Attempts left: {remaining}."
        return job_page(shown["job_id"], status=exc.status, confirm_error=detail)
    return go("job", job_id=shown["job_id"])


@blp.post("/transfers/<transfer_id>/cancel")
@customer_only
def transfer_cancel(transfer_id: str):  # type: ignore[no-untyped-def]
    shown = transfers.cancel_transfer(bank(), current(), transfer_id)
    return go("job", job_id=shown["job_id"])


@blp.get("/kyc")
@customer_only
def kyc():  # type: ignore[no-untyped-def]
    return _kyc_page()


def _kyc_page(status: int = 200, **context: Any):  # type: ignore[no-untyped-def]
    mine = documents.list_documents(bank(), current(), review_queue=False, limit=50, cursor=None)["items"]
    return page("kyc.html", status=status, documents=list(reversed(mine)), key=new_key(), **context)


@blp.post("/kyc")
@customer_only
def kyc_upload():  # type: ignore[no-untyped-def]
    upload = request.files.get("file")
    try:
        key = form_key()
        form = load(DocumentForm(), submitted(("document_type",)))
        if upload is None or not upload.filename:
            raise ValidationFailed("Choose a photo or scan of the document.", errors={"file": ["Required."]})
        data = upload.read(documents.MAX_UPLOAD_BYTES + 1)
        accepted = accept_once(lambda: documents.submit_document(
            bank(), current(), document_type=form["document_type"], data=data, idempotency_key=key))
    except BankqError as exc:
        return _kyc_page(status=exc.status, error=exc.detail, errors=exc.errors)
    return go("job", job_id=accepted.body["id"])


@blp.get("/notifications")
@signed_in
def notifications_page():  # type: ignore[no-untyped-def]
    cursor = request.args.get("cursor") or None
    sent = notifications.list_notifications(bank(), current(), limit=PAGE_SIZE, cursor=cursor)
    return page("notifications.html", sent=sent, first_page=cursor is None)


def _reminders_page(status: int = 200, **context: Any):  # type: ignore[no-untyped-def]
    mine = reminders.list_reminders(bank(), current(), limit=100, cursor=None)["items"]
    return page("reminders.html", status=status, reminders=mine, **context)


@blp.get("/reminders")
@customer_only
def reminders_page():  # type: ignore[no-untyped-def]
    return _reminders_page(values={"channel": "in_app", "repeat": "none"})


@blp.post("/reminders")
@customer_only
def reminder_create():  # type: ignore[no-untyped-def]
    values = submitted(REMINDER_FIELDS)
    try:
        body = dict(values)
        local_to_utc(body, "remind_at")
        reminders.create_reminder(bank(), current(), reminders.NewReminder(**load(ReminderIn(), body)))
    except BankqError as exc:
        return _reminders_page(status=exc.status, error=exc.detail, errors=exc.errors, values=values)
    return go("reminders_page")


@blp.post("/reminders/<reminder_id>/cancel")
@customer_only
def reminder_cancel(reminder_id: str):  # type: ignore[no-untyped-def]
    reminders.cancel_reminder(bank(), current(), reminder_id)
    return go("reminders_page")


def _orders_page(status: int = 200, **context: Any):  # type: ignore[no-untyped-def]
    mine = standing_orders.list_standing_orders(bank(), current(), limit=100, cursor=None)["items"]
    return page("standing_orders.html", status=status, orders=mine, accounts=own_accounts(), key=new_key(),
                **context)


@blp.get("/standing-orders")
@customer_only
def standing_orders_page():  # type: ignore[no-untyped-def]
    return _orders_page(values={"frequency": "monthly"})


@blp.post("/standing-orders")
@customer_only
def standing_order_create():  # type: ignore[no-untyped-def]
    values = submitted(ORDER_FIELDS)
    try:
        key = form_key()
        sent = with_source_currency(values)
        body = load(StandingOrderIn(), sent)
        accept_once(lambda: standing_orders.create_standing_order(
            bank(), current(), standing_orders.NewStandingOrder(**body), idempotency_key=key, body=sent))
    except BankqError as exc:
        return _orders_page(status=exc.status, error=exc.detail, errors=exc.errors, values=values)
    return go("standing_orders_page")


@blp.post("/standing-orders/<order_id>/cancel")
@customer_only
def standing_order_cancel(order_id: str):  # type: ignore[no-untyped-def]
    standing_orders.cancel_standing_order(bank(), current(), order_id)
    return go("standing_orders_page")


def _profile_page(status: int = 200, **context: Any):  # type: ignore[no-untyped-def]
    me = users.me(bank().db, bank().settings, current())
    return page("profile.html", status=status, me=me, zones=sorted(known_zones()), **context)


@blp.get("/profile")
@signed_in
def profile():  # type: ignore[no-untyped-def]
    return _profile_page()


@blp.post("/profile")
@signed_in
def profile_update():  # type: ignore[no-untyped-def]
    values = submitted(("full_name", "phone", "time_zone"))
    changes: dict[str, Any] = dict(values)
    if "phone" not in changes and request.form.get("phone") is not None:
        changes["phone"] = None  # an emptied field removes the number
    changes["monthly_statements"] = request.form.get("monthly_statements") == "on"
    try:
        users.update_profile(bank().db, current().id, load(ProfileIn(), changes))
    except BankqError as exc:
        return _profile_page(status=exc.status, error=exc.detail, errors=exc.errors)
    return go("profile", saved=1)


__all__ = ["KEY_FIELD", "own_accounts"]
