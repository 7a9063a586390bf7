"""KYC: identity document uploads (jobs on the `kyc` queue) and staff review. Images are never served."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.jobs_http import IDEMPOTENCY_HEADER, idempotency_key, idempotency_required, job_response
from api.schemas import JobOut, PageArgs
from api.schemas_kyc import DocumentFile, DocumentForm, DocumentOut, DocumentPage, ReviewIn
from api.security import bank, current_user, staff_required
from core.kyc import documents

blp = Blueprint("kyc", __name__, url_prefix="/api/v1/kyc", description="Identity documents")
BEARER = [{"bearerAuth": []}]
UPLOAD_LIMIT = 11 * 1024 * 1024  # the 10 MB file plus the multipart envelope


@blp.post("/documents")
@blp.doc(
    security=BEARER,
    parameters=[IDEMPOTENCY_HEADER],
    description="multipart/form-data with `file` (PNG or JPEG by content, at most 10 MB and 40 megapixels) "
    "and `document_type`. 413 when too large, 415 for anything that is not a valid PNG or JPEG.",
)
@jwt_required()
@idempotency_required
@blp.arguments(DocumentForm, location="form")
@blp.arguments(DocumentFile, location="files")
@blp.response(202, JobOut)
def upload_document(form: dict, files: dict):  # type: ignore[no-untyped-def]
    accepted = documents.submit_document(
        bank(),
        current_user(),
        document_type=form["document_type"],
        data=files["file"].read(documents.MAX_UPLOAD_BYTES + 1),
        idempotency_key=idempotency_key(),
    )
    return job_response(accepted)


@blp.get("/documents")
@blp.doc(security=BEARER, description="The caller's own documents.")
@jwt_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, DocumentPage)
def list_documents(args: dict) -> dict:
    return documents.list_documents(
        bank(), current_user(), review_queue=False, limit=args["limit"], cursor=args["cursor"]
    )


@blp.get("/documents/<document_id>")
@blp.doc(security=BEARER)
@jwt_required()
@blp.response(200, DocumentOut)
def get_document(document_id: str) -> dict:
    return documents.get_document(bank(), current_user(), document_id)


@blp.get("/reviews")
@blp.doc(security=BEARER, description="Documents waiting for a person (staff), oldest first.")
@jwt_required()
@staff_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, DocumentPage)
def reviews(args: dict) -> dict:
    return documents.list_documents(
        bank(), current_user(), review_queue=True, limit=args["limit"], cursor=args["cursor"]
    )


@blp.post("/documents/<document_id>/review")
@blp.doc(security=BEARER)
@jwt_required()
@staff_required
@blp.arguments(ReviewIn)
@blp.response(200, DocumentOut)
def review(body: dict, document_id: str) -> dict:
    return documents.review_document(
        bank(), current_user(), document_id, decision=body["decision"], reason=body["reason"]
    )
