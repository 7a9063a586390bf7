"""Statements: requested as jobs on an account, read and downloaded as reports."""

from __future__ import annotations

from flask import Response, send_file
from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.jobs_http import IDEMPOTENCY_HEADER, idempotency_key, idempotency_required, job_response
from api.schemas import JobOut
from api.schemas_reports import ReportOut, StatementIn
from api.security import bank, current_user
from core.reports import statements

blp = Blueprint("reports", __name__, url_prefix="/api/v1", description="Statements (reports)")
BEARER = [{"bearerAuth": []}]
FILE = {"schema": {"type": "string", "format": "binary"}}


def _problem(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


@blp.post("/accounts/<account_id>/statements")
@blp.doc(
    security=BEARER,
    parameters=[IDEMPOTENCY_HEADER],
    description="A statement of the account for `from`..`to` (UTC days, inclusive) as `pdf` or `csv`: a job whose "
    "`links.resource` is the report. The account's owner or staff; another's account is 404. 422 when `to` is "
    f"before `from`, after today, or more than {statements.MAX_DAYS} days after it (`period_too_long`).",
)
@jwt_required()
@idempotency_required
@blp.arguments(StatementIn)
@blp.response(202, JobOut)
def request_statement(body: dict, account_id: str):  # type: ignore[no-untyped-def]
    accepted = statements.request_statement(
        bank(),
        current_user(),
        account_id,
        first=body["period_from"],
        last=body["period_to"],
        format=body["format"],
        idempotency_key=idempotency_key(),
    )
    return job_response(accepted)


@blp.get("/reports/<report_id>")
@blp.doc(
    security=BEARER,
    description="The report: `processing`, then `ready` (with size, sha256 and totals) "
    "or `failed`. Its account's owner or staff; otherwise 404.",
)
@jwt_required()
@blp.response(200, ReportOut)
def get_report(report_id: str) -> dict:
    return statements.get_report(bank(), current_user(), report_id)


@blp.get("/reports/<report_id>/download")
@blp.doc(
    security=BEARER,
    description="The file, as an attachment. 409 `report_not_ready` (with Retry-After) while processing, "
    "409 `report_failed` if rendering failed, 410 `report_gone` if the file was removed; 404 unless the caller "
    "owns the account or is staff.",
    responses={
        "200": {
            "description": "The statement file.",
            "content": {"application/pdf": FILE, "text/csv": FILE},
            "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
        },
        "401": _problem("No token, or an invalid, expired or revoked one."),
        "404": _problem("No such report, or not the caller's (code `report_not_found`)."),
        "409": _problem("`report_not_ready` (with Retry-After) or `report_failed`."),
        "410": _problem("The file is no longer kept (code `report_gone`)."),
    },
)
@jwt_required()
def download_report(report_id: str) -> Response:
    file = statements.download(bank(), current_user(), report_id)
    response = send_file(
        file.path, mimetype=file.content_type, as_attachment=True, download_name=file.filename, max_age=0
    )
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
