"""KYC documents: accepted as jobs on the `kyc` queue, read by OCR in a worker, decided, reviewed by staff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit, jobs
from core.bank import Bank
from core.clock import isoformat, utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.idempotency import Accepted, accept, fingerprint
from core.kyc.decision import Decision, decide
from core.kyc.uploads import MAX_BYTES, check_image, remove_uploads, store_upload
from core.models import Job, KycDocument, User, new_id
from core.notifications import queue_notification
from core.pagination import check_limit, decode_cursor, encode_cursor
from core.users import is_staff

log = logging.getLogger(__name__)
DOCUMENT_TYPES = ("passport", "id_card")
# A running KYC job untouched this long belongs to a dead worker and may be taken over.
LEASE = timedelta(minutes=5)
MAX_UPLOAD_BYTES = MAX_BYTES
KYC_STATUS_FOR = {"verified": "verified", "rejected": "rejected", "needs_review": "pending"}


@dataclass(frozen=True)
class Claim:
    job_id: str
    attempt: int
    path: Path
    document_type: str
    full_name: str
    birth_date: Any


def document_view(doc: KycDocument) -> dict[str, Any]:
    extracted = dict(doc.extracted or {})
    extracted.pop("format", None)
    return {
        "id": doc.id,
        "job_id": doc.job_id,
        "user_id": doc.user_id,
        "status": doc.status,
        "document_type": doc.document_type,
        "extracted": extracted or None,
        "checks": doc.checks,
        "reasons": doc.reasons or [],
        "review_reason": doc.review_reason,
        "created_at": isoformat(doc.created_at),
        "updated_at": isoformat(doc.updated_at),
    }


def storage_dir(bank: Bank) -> Path:
    path = bank.settings.data_dir / "kyc"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def submit_document(
    bank: Bank, user: User, *, document_type: str, data: bytes, idempotency_key: str | None
) -> Accepted:
    if user.role != "customer":
        raise Forbidden("Only customers upload their own identity documents.", code="forbidden")
    if document_type not in DOCUMENT_TYPES:
        raise ValidationFailed("Unknown document type.", errors={"document_type": ["Must be passport or id_card."]})
    image = check_image(data)
    body = {"document_type": document_type, "file_sha256": image.sha256}
    # One file per run of `create`: accept() may run it more than once (a racing request with the same key), and
    # only the last run commits, unless the answer is a replay or an error, when none did.
    written: list[Path] = []

    def create(s: Session) -> tuple[int, dict[str, Any], str | None]:
        doc_id = new_id()
        stored_name = f"{doc_id}.{image.extension}"
        # Written before the commit, so a committed document always has its file when the worker is told.
        written.append(store_upload(storage_dir(bank) / stored_name, image.content))
        job = jobs.new_job(
            s, kind="kyc", user_id=user.id, resource_type="kyc_document", resource_id=doc_id, job_id=new_id()
        )
        s.add(
            KycDocument(
                id=doc_id,
                user_id=user.id,
                job_id=job.id,
                document_type=document_type,
                stored_name=stored_name,
                content_type=image.content_type,
                sha256=image.sha256,
                size_bytes=image.original_size,
                width=image.width,
                height=image.height,
            )
        )
        owner = s.get(User, user.id, with_for_update=True)
        if owner is not None and owner.kyc_status != "verified":
            owner.kyc_status = "pending"
        s.flush()
        jobs.enqueue(s, job)
        audit.record(s, user.id, "kyc.document_uploaded", f"kyc_document:{doc_id}", document_type=document_type)
        return 202, jobs.job_view(job), job.id

    try:
        accepted = accept(
            bank.db,
            user_id=user.id,
            key=idempotency_key,
            request_fingerprint=fingerprint("POST", "/api/v1/kyc/documents", body),
            create=create,
            ttl_seconds=bank.settings.idempotency_ttl_seconds,
        )
    except BaseException:
        remove_uploads(written)
        raise
    remove_uploads(written if accepted.replayed else written[:-1])
    return accepted


def claim(bank: Bank, job_id: str) -> Claim | None:
    """Take the job (queued, or running under an expired lease) in its own short transaction: OCR is slow
    and must not hold a database transaction open."""
    with bank.db.transaction() as s:
        job = jobs.claim_leased(s, job_id, "kyc", LEASE)
        if job is None:
            return None
        doc = s.scalar(select(KycDocument).where(KycDocument.job_id == job_id))
        owner = s.get(User, doc.user_id) if doc else None
        if doc is None or owner is None:
            jobs.finish(job, "failed", error_code="invalid_state", error_message="The document is gone.")
            return None
        jobs.start_attempt(job)
        return Claim(
            job.id,
            job.attempts,
            storage_dir(bank) / doc.stored_name,
            doc.document_type,
            owner.full_name,
            owner.date_of_birth,
        )


def process_document(bank: Bank, job_id: str, read: Callable[[Path], Any]) -> str | None:
    """Claim, read (outside any transaction), then record the decision and the job's end together."""
    taken = claim(bank, job_id)
    if taken is None:
        return None
    started = time.perf_counter()
    with bank.db.recording_failure(lambda s: _release(s, taken)):
        reading = read(taken.path)
    decision = decide(
        reading.mrz,
        document_type=taken.document_type,
        full_name=taken.full_name,
        birth_date=taken.birth_date,
        today=utcnow().date(),
    )
    return _record(bank, taken, decision, int((time.perf_counter() - started) * 1000))


def _release(s: Session, taken: Claim) -> None:
    """This attempt failed; put the job back so the retry (or the re-drive) can claim it at once."""
    job = s.get(Job, taken.job_id, with_for_update=True)
    if job is not None and job.status == "running" and job.attempts == taken.attempt:
        job.status, job.updated_at = "queued", utcnow()


def give_up(bank: Bank, job_id: str, error: str) -> str | None:
    """OCR kept failing: a person decides. The document never stays in `processing`."""
    log.error("kyc: giving up reading job %s: %s", job_id, error)
    with bank.db.transaction() as s:
        job = s.get(Job, job_id)
        attempt = job.attempts if job else 0
        doc = s.scalar(select(KycDocument).where(KycDocument.job_id == job_id))
        if job is None or doc is None or job.status in jobs.TERMINAL:
            return None
    taken = Claim(job_id, attempt, Path(), doc.document_type, "", None)
    decision = Decision(
        "needs_review",
        {"mrz_valid": False, "not_expired": None, "name_match": None, "birth_date_match": None},
        ["ocr_failed"],
    )
    return _record(bank, taken, decision, None, force=True)


def _record(bank: Bank, taken: Claim, decision: Decision, elapsed_ms: int | None, force: bool = False) -> str | None:
    with bank.db.transaction() as s:
        job = s.get(Job, taken.job_id, with_for_update=True)
        if job is None or job.status in jobs.TERMINAL or (not force and job.attempts != taken.attempt):
            return None  # another worker took over after our lease expired; its answer counts
        doc = s.scalar(select(KycDocument).where(KycDocument.job_id == taken.job_id).with_for_update())
        assert doc is not None
        doc.status, doc.checks, doc.reasons = decision.status, decision.checks, decision.reasons
        doc.extracted, doc.processing_ms, doc.updated_at = decision.extracted, elapsed_ms, utcnow()
        owner = s.get(User, doc.user_id, with_for_update=True)
        if owner is not None:
            owner.kyc_status = KYC_STATUS_FOR[decision.status]
            _tell(s, owner, decision.status, decision.reasons)
        jobs.finish(job, "succeeded", result={"document_id": doc.id, "status": decision.status})
        audit.record(s, None, f"kyc.document_{decision.status}", f"kyc_document:{doc.id}", reasons=decision.reasons)
        return decision.status


def _tell(s: Session, owner: User, status: str, reasons: list[str]) -> None:
    """The customer hears the outcome, in the same transaction that records it."""
    queue_notification(
        s, user=owner, channel="email", template="kyc_outcome", context={"status": status, "reasons": reasons}
    )


def _visible(s: Session, user: User, document_id: str) -> KycDocument:
    doc = s.get(KycDocument, document_id) if isinstance(document_id, str) and len(document_id) <= 36 else None
    if doc is None or not (is_staff(user) or doc.user_id == user.id):
        raise NotFound("No such document.", code="document_not_found")
    return doc


def get_document(bank: Bank, user: User, document_id: str) -> dict[str, Any]:
    with bank.db.transaction() as s:
        return document_view(_visible(s, user, document_id))


def list_documents(
    bank: Bank, user: User, *, review_queue: bool, limit: int | None, cursor: str | None
) -> dict[str, Any]:
    """A customer's own documents, or (staff) the documents waiting for review, oldest first."""
    limit = check_limit(limit)
    after = decode_cursor(cursor, 2)
    query = select(KycDocument)
    if review_queue:
        if not is_staff(user):
            raise Forbidden("Staff only.", code="forbidden")
        query = query.where(KycDocument.status == "needs_review")
    else:
        query = query.where(KycDocument.user_id == user.id)
    with bank.db.transaction() as s:
        if after:
            anchor = s.get(KycDocument, str(after[1]))
            if anchor is not None:
                query = query.where(
                    (KycDocument.created_at > anchor.created_at)
                    | ((KycDocument.created_at == anchor.created_at) & (KycDocument.id > anchor.id))
                )
        rows = list(s.scalars(query.order_by(KycDocument.created_at, KycDocument.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [document_view(d) for d in rows],
        "next_cursor": encode_cursor(isoformat(rows[-1].created_at), rows[-1].id) if more else None,
    }


@dataclass(frozen=True)
class StoredImage:
    path: Path
    content_type: str


def document_image(bank: Bank, staff: User, document_id: str) -> StoredImage:
    """The stored copy of an upload (re-encoded at upload, so without metadata), for the staff member reviewing it.
    Nobody else is shown an image: to anyone but staff the document does not exist (404)."""
    if not is_staff(staff):
        raise NotFound("No such document.", code="document_not_found")
    with bank.db.transaction() as s:
        doc = _visible(s, staff, document_id)
        path = storage_dir(bank) / doc.stored_name
        content_type = doc.content_type
    if not path.is_file():
        raise NotFound("The document's image is no longer stored.", code="document_image_gone")
    return StoredImage(path, content_type)


def review_document(bank: Bank, staff: User, document_id: str, *, decision: str, reason: str) -> dict[str, Any]:
    if not is_staff(staff):
        raise Forbidden("Staff only.", code="forbidden")
    if decision not in ("approve", "reject"):
        raise ValidationFailed("Unknown decision.", errors={"decision": ["Must be approve or reject."]})
    with bank.db.transaction() as s:
        doc = _visible(s, staff, document_id)
        s.refresh(doc, with_for_update=True)
        if doc.status == "processing":
            raise Conflict("The document is still being read.", code="document_processing")
        if doc.user_id == staff.id:
            raise Forbidden("Nobody reviews their own documents.", code="forbidden")
        doc.status = "verified" if decision == "approve" else "rejected"
        doc.reviewed_by, doc.review_reason, doc.updated_at = staff.id, reason, utcnow()
        owner = s.get(User, doc.user_id, with_for_update=True)
        if owner is not None:
            owner.kyc_status = doc.status
            _tell(s, owner, doc.status, [])
        audit.record(s, staff.id, f"kyc.review_{decision}", f"kyc_document:{doc.id}", reason=reason)
        return document_view(doc)


def processing_figures(bank: Bank) -> dict[str, Any]:
    """Per-outcome counts and processing time, for /metrics."""
    with bank.db.transaction() as s:
        rows = s.execute(
            select(
                KycDocument.status,
                func.count(),
                func.coalesce(func.sum(KycDocument.processing_ms), 0),
                func.count(KycDocument.processing_ms),
            ).group_by(KycDocument.status)
        ).all()
    return {
        status: {"count": int(n), "seconds_sum": int(ms or 0) / 1000, "timed": int(timed)}
        for status, n, ms, timed in rows
    }
