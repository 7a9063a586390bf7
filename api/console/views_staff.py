"""Staff pages, by role as in the API: tellers and admins review identity documents, find customers, set their
status and record deposits and withdrawals; admins also see the queues, the audit trail and the ledger check."""

from __future__ import annotations

from typing import Any

from flask import request, send_file

from api.console.blueprint import bank, blp, current, go, page
from api.console.forms import accept_once, form_key, load, new_key, submitted
from api.console.sessions import admin_only, staff_only
from api.schemas import AuditArgs, MovementIn
from api.schemas_customers import CustomerSearchArgs, CustomerStatusIn
from api.schemas_kyc import ReviewIn
from core import audit, customers, jobs, ledger, transfers
from core.errors import BankqError, NotFound, ValidationFailed
from core.kyc import documents
from tasks.publisher import workers_report

PAGE_SIZE = 25


@blp.get("/staff/kyc")
@staff_only
def kyc_queue():  # type: ignore[no-untyped-def]
    cursor = request.args.get("cursor") or None
    waiting = documents.list_documents(bank(), current(), review_queue=True, limit=PAGE_SIZE, cursor=cursor)
    return page("staff_kyc_queue.html", waiting=waiting)


def _review_page(document_id: str, status: int = 200, **context: Any):  # type: ignore[no-untyped-def]
    doc = documents.get_document(bank(), current(), document_id)
    owner = customers.get_customer(bank().db, doc["user_id"])
    return page("staff_kyc_review.html", status=status, doc=doc, owner=owner, **context)


@blp.get("/staff/kyc/<document_id>")
@staff_only
def kyc_review(document_id: str):  # type: ignore[no-untyped-def]
    return _review_page(document_id)


@blp.get("/staff/kyc/<document_id>/image")
@staff_only
def kyc_image(document_id: str):  # type: ignore[no-untyped-def]
    image = documents.document_image(bank(), current(), document_id)
    response = send_file(image.path, mimetype=image.content_type, max_age=0, conditional=False)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Disposition"] = "inline"
    return response


@blp.post("/staff/kyc/<document_id>/review")
@staff_only
def kyc_decide(document_id: str):  # type: ignore[no-untyped-def]
    values = submitted(("decision", "reason"))
    try:
        body = load(ReviewIn(), values)
        documents.review_document(bank(), current(), document_id, decision=body["decision"], reason=body["reason"])
    except BankqError as exc:
        return _review_page(document_id, status=exc.status, error=exc.detail, errors=exc.errors, values=values)
    return go("kyc_review", document_id=document_id)


@blp.get("/staff/customers")
@staff_only
def customer_search():  # type: ignore[no-untyped-def]
    args = load(CustomerSearchArgs(), {k: v for k, v in request.args.items() if k in ("q", "cursor") and v})
    q = (args["q"] or "").strip()
    found = customers.search(bank().db, q, limit=PAGE_SIZE, cursor=args["cursor"])
    return page("staff_customers.html", q=q, found=found)


def _customer_page(customer_id: str, status: int = 200, **context: Any):  # type: ignore[no-untyped-def]
    return page("staff_customer.html", status=status, customer=customers.get_customer(bank().db, customer_id),
                **context)


@blp.get("/staff/customers/<customer_id>")
@staff_only
def customer(customer_id: str):  # type: ignore[no-untyped-def]
    return _customer_page(customer_id)


@blp.post("/staff/customers/<customer_id>/status")
@staff_only
def customer_status(customer_id: str):  # type: ignore[no-untyped-def]
    try:
        body = load(CustomerStatusIn(), submitted(("status",)))
        customers.set_status(bank().db, current().id, customer_id, body["status"])
    except BankqError as exc:
        return _customer_page(customer_id, status=exc.status, error=exc.detail, errors=exc.errors)
    return go("customer", customer_id=customer_id)


def _movement_form(status: int = 200, **context: Any):  # type: ignore[no-untyped-def]
    account_id = context.pop("account_id", None) or request.args.get("account", "")
    held: dict[str, Any] | None = None
    if account_id and not account_id.isprintable():
        raise NotFound("No such account.", code="account_not_found")  # PostgreSQL could not even look it up
    if account_id:
        from core import accounts

        held = accounts.get_account(bank().db, current(), account_id)
    values = context.pop("values", None) or {"kind": request.args.get("kind", "deposit")}
    return page("staff_movement.html", status=status, account=held, values=values, key=new_key(), **context)


@blp.get("/staff/movements/new")
@staff_only
def movement_form():  # type: ignore[no-untyped-def]
    return _movement_form()


@blp.post("/staff/movements")
@staff_only
def movement_submit():  # type: ignore[no-untyped-def]
    values = submitted(("kind", "account_id", "amount", "currency", "description"))
    kind = values.pop("kind", "")
    try:
        if kind not in ("deposit", "withdrawal"):
            raise ValidationFailed("Choose deposit or withdrawal.", errors={"kind": ["Deposit or withdrawal."]})
        key = form_key()
        body = load(MovementIn(), values)
        accepted = accept_once(lambda: transfers.request_movement(
            bank(), current(), transfers.MovementRequest(kind=kind, **body), idempotency_key=key,
            body={"kind": kind, **values}))
    except BankqError as exc:
        return _movement_form(status=exc.status, error=exc.detail, errors=exc.errors,
                              values={"kind": kind, **values}, account_id=values.get("account_id"))
    return go("job", job_id=accepted.body["id"])


@blp.get("/staff/queues")
@admin_only
def queues():  # type: ignore[no-untyped-def]
    return page("staff_queues.html", queues=jobs.queue_report(bank().db), **workers_report())


@blp.get("/staff/audit")
@admin_only
def audit_trail():  # type: ignore[no-untyped-def]
    args = load(AuditArgs(), {k: v for k, v in request.args.items() if k in ("action", "cursor") and v})
    events = audit.list_events(bank().db, action=args["action"], limit=50, cursor=args["cursor"])
    return page("staff_audit.html", events=events, action=args["action"] or "", actions=sorted(audit.ACTIONS))


@blp.get("/staff/ledger")
@admin_only
def ledger_check():  # type: ignore[no-untyped-def]
    return page("staff_ledger.html", check=ledger.check_ledger(bank().db) if request.args.get("run") else None)
