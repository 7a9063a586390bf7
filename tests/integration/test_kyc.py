"""KYC over HTTP on real PostgreSQL: hostile uploads write nothing; real OCR decides; staff review."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from core.kyc import documents
from core.models import Job, KycDocument, User
from core.mrz import read_mrz as read_document
from tests.documents import ONES_TRAP, TRAP_GLYPHS, ZEROS_TRAP, Person, render_td3
from tests.support import auth_headers, make_user, open_account

PROFILE = {"full_name": "Anna Maria Eriksson", "date_of_birth": date(1974, 8, 12)}


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions but carries almost no data (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def upload(
    client, headers, data: bytes, filename="doc.png", document_type="passport", key="k1", content_type="image/png"
):
    return client.post(
        "/api/v1/kyc/documents",
        headers={**headers, "Idempotency-Key": key},
        data={"document_type": document_type, "file": (io.BytesIO(data), filename, content_type)},
        content_type="multipart/form-data",
    )


def counts(bank):
    with bank.db.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(KycDocument)),
            s.scalar(select(func.count()).select_from(Job)),
        )


def stored_files(bank) -> list[Path]:
    folder = bank.settings.data_dir / "kyc"
    return sorted(folder.glob("*")) if folder.exists() else []


@pytest.fixture(scope="module")
def passport_png() -> bytes:
    return png_bytes(render_td3(Person()))


HOSTILE = [
    ("empty file", b"", 422, "empty_file"),
    ("huge png header 50000x50000", png_header_only(50_000, 50_000), 413, "image_too_large"),
    ("41 megapixels", png_header_only(8_000, 5_125), 413, "image_too_large"),
    ("pdf named png", b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", 415, "unsupported_image"),
    ("html named png", b"<!doctype html><script>alert(1)</script>", 415, "unsupported_image"),
    ("zip named png", b"PK\x03\x04" + zlib.compress(b"\x00" * 10_000_000), 415, "unsupported_image"),
    ("truncated png", None, 415, "invalid_image"),
    (
        "ten and a half megabytes",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * (10 * 1024 * 1024 + 512 * 1024),
        413,
        "file_too_large",
    ),
    ("eleven megabytes", b"\x89PNG\r\n\x1a\n" + b"\x00" * (11 * 1024 * 1024), 413, None),
]


@pytest.mark.parametrize(("name", "data", "status", "code"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_uploads_are_refused_and_write_nothing(bank, client, passport_png, name, data, status, code):
    customer = make_user(bank, kyc="unverified")
    headers = auth_headers(client, customer)
    if data is None:
        data = passport_png[: len(passport_png) // 2]
    before, files_before = counts(bank), stored_files(bank)
    answer = upload(client, headers, data, key="hostile-" + name.replace(" ", "-"))
    assert answer.status_code == status, answer.get_json()
    assert answer.mimetype == "application/problem+json"
    if code:
        assert answer.get_json()["code"] == code
    assert counts(bank) == before and stored_files(bank) == files_before
    with bank.db.transaction() as s:
        assert s.get(User, customer.id).kyc_status == "unverified"


def test_upload_rules(bank, client, passport_png):
    customer, teller = make_user(bank, kyc="unverified"), make_user(bank, role="teller")
    headers = auth_headers(client, customer)
    not_multipart = client.post(
        "/api/v1/kyc/documents",
        data=passport_png,
        content_type="image/png",
        headers={**headers, "Idempotency-Key": "raw"},
    )
    assert not_multipart.status_code == 415
    assert upload(client, headers, passport_png, document_type="driving_licence", key="dl").status_code == 422
    no_file = client.post(
        "/api/v1/kyc/documents",
        data={"document_type": "passport"},
        content_type="multipart/form-data",
        headers={**headers, "Idempotency-Key": "nofile"},
    )
    assert no_file.status_code == 422
    no_key = client.post(
        "/api/v1/kyc/documents",
        headers=headers,
        content_type="multipart/form-data",
        data={"document_type": "passport", "file": (io.BytesIO(passport_png), "p.png")},
    )
    assert no_key.status_code == 400 and no_key.get_json()["code"] == "idempotency_key_required"
    assert upload(client, auth_headers(client, teller), passport_png, key="t").status_code == 403
    assert counts(bank)[0] == 0


def test_polyglot_is_stored_re_encoded_without_its_tail(bank, client, passport_png):
    customer = make_user(bank, kyc="unverified")
    tail = b"<html><script>alert('x')</script></html>" + b"PK\x05\x06" + b"\x00" * 18
    answer = upload(client, auth_headers(client, customer), passport_png + tail, filename="../../etc/passwd.png")
    assert answer.status_code == 202, answer.get_json()
    [stored] = stored_files(bank)
    assert stored.parent == bank.settings.data_dir / "kyc" and "passwd" not in stored.name
    content = stored.read_bytes()
    assert b"<script>" not in content and content.startswith(b"\x89PNG")
    with bank.db.transaction() as s:
        assert s.get(User, customer.id).kyc_status == "pending"


def test_verified_document_unlocks_sending_money(bank, client, passport_png):
    customer = make_user(bank, kyc="unverified", **PROFILE)
    bob = make_user(bank)
    headers = auth_headers(client, customer)
    source, destination = open_account(bank, customer, "EUR", 10_00), open_account(bank, bob, "EUR")
    body = {"source_account_id": source, "destination_account_id": destination, "amount": "1.00", "currency": "EUR"}
    refused = client.post("/api/v1/transfers", json=body, headers={**headers, "Idempotency-Key": "before"})
    assert refused.status_code == 403 and refused.get_json()["code"] == "kyc_required"

    job = upload(client, headers, passport_png).get_json()
    assert job["kind"] == "kyc" and job["links"]["resource"].startswith("/api/v1/kyc/documents/")
    assert documents.process_document(bank, job["id"], read_document) == "verified"
    assert documents.process_document(bank, job["id"], read_document) is None  # a duplicate delivery does nothing
    doc = client.get(job["links"]["resource"], headers=headers).get_json()
    assert doc["status"] == "verified" and doc["reasons"] == []
    assert doc["checks"] == {"mrz_valid": True, "not_expired": True, "name_match": True, "birth_date_match": True}
    assert doc["extracted"]["surname"] == "ERIKSSON" and doc["extracted"]["document_number"] == "L898902C3"
    assert client.get("/api/v1/auth/me", headers=headers).get_json()["kyc_status"] == "verified"
    sent = client.get("/api/v1/notifications", headers=headers).get_json()["items"]
    assert [n["template"] for n in sent] == ["kyc_outcome"]
    allowed = client.post("/api/v1/transfers", json=body, headers={**headers, "Idempotency-Key": "after"})
    assert allowed.status_code == 202
    other = make_user(bank)
    assert client.get(job["links"]["resource"], headers=auth_headers(client, other)).status_code == 404


def test_mismatched_name_is_not_verified_and_staff_decide(bank, client):
    customer = make_user(bank, kyc="unverified", full_name="Anna Maria Eriksen", date_of_birth=date(1974, 8, 12))
    stranger = make_user(bank, kyc="unverified", full_name="Zbigniew Kowalczyk", date_of_birth=date(1974, 8, 12))
    teller = make_user(bank, role="teller")
    png = png_bytes(render_td3(Person()))
    near = upload(client, auth_headers(client, customer), png, key="near").get_json()
    far = upload(client, auth_headers(client, stranger), png, key="far").get_json()
    assert documents.process_document(bank, near["id"], read_document) == "needs_review"
    assert documents.process_document(bank, far["id"], read_document) == "rejected"

    t_headers = auth_headers(client, teller)
    queue = client.get("/api/v1/kyc/reviews", headers=t_headers).get_json()["items"]
    assert [d["job_id"] for d in queue] == [near["id"]] and "name_mismatch" in queue[0]["reasons"]
    assert client.get("/api/v1/kyc/reviews", headers=auth_headers(client, customer)).status_code == 403
    reviewed = client.post(
        f"/api/v1/kyc/documents/{queue[0]['id']}/review",
        headers=t_headers,
        json={"decision": "approve", "reason": "Spelling variant confirmed by phone"},
    )
    assert reviewed.status_code == 200 and reviewed.get_json()["status"] == "verified"
    with bank.db.transaction() as s:
        assert s.get(User, customer.id).kyc_status == "verified"
        assert s.get(User, stranger.id).kyc_status == "rejected"


@pytest.mark.parametrize(
    ("person", "readings"),
    [(ZEROS_TRAP, {"X12007345", "X12OO7345"}), (ONES_TRAP, {"L02119245", "L02II9245"})],
    ids=["zeros and O", "ones and I"],
)
def test_a_number_the_check_digit_cannot_decide_is_never_verified(bank, client, person, readings):
    """The O/0 and I/1 traps through the worker's path: a number whose look-alikes pass the check digit either way,
    on a document that prints them alike, ends in needs_review with uncertain_reading, and the customer stays
    pending."""
    customer = make_user(bank, kyc="unverified", **PROFILE)
    headers = auth_headers(client, customer)
    job = upload(client, headers, png_bytes(render_td3(person, seed=5, glyphs=TRAP_GLYPHS, jpeg=70))).get_json()
    assert documents.process_document(bank, job["id"], read_document) == "needs_review"
    doc = client.get(job["links"]["resource"], headers=headers).get_json()
    assert doc["status"] == "needs_review" and doc["checks"]["mrz_valid"] is False
    assert any(reason.startswith("uncertain_reading") for reason in doc["reasons"]), doc["reasons"]
    if doc["extracted"]:  # what was read is one of the two readings, or a misread the check digit refused
        number = doc["extracted"]["document_number"]
        assert number in readings or "check_digit_failed:document_number" in doc["reasons"]
    assert client.get("/api/v1/auth/me", headers=headers).get_json()["kyc_status"] == "pending"


def test_ocr_failure_retries_then_goes_to_review(bank, client, passport_png):
    customer = make_user(bank, kyc="unverified", **PROFILE)
    job = upload(client, auth_headers(client, customer), passport_png).get_json()

    def broken(_path):
        raise RuntimeError("tesseract crashed")

    with pytest.raises(RuntimeError):
        documents.process_document(bank, job["id"], broken)
    with bank.db.transaction() as s:
        assert s.get(Job, job["id"]).status == "queued"  # released for the retry
    assert documents.give_up(bank, job["id"], "RuntimeError: tesseract crashed") == "needs_review"
    with bank.db.transaction() as s:
        doc = s.scalar(select(KycDocument).where(KycDocument.job_id == job["id"]))
        assert (doc.status, doc.reasons) == ("needs_review", ["ocr_failed"])
        assert s.get(Job, job["id"]).status == "succeeded"


def stored_names(bank) -> list[str]:
    with bank.db.transaction() as s:
        return sorted(s.scalars(select(KycDocument.stored_name)))


def test_a_replayed_or_refused_upload_leaves_no_orphan_file(bank, client, passport_png):
    customer = make_user(bank, kyc="unverified")
    headers = auth_headers(client, customer)
    first = upload(client, headers, passport_png, key="same")
    again = upload(client, headers, passport_png, key="same")
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json()["id"] == first.get_json()["id"]
    reused = upload(client, headers, png_bytes(render_td3(Person(), seed=9)), key="same")
    assert reused.status_code == 422 and reused.get_json()["code"] == "idempotency_key_reused"
    [name] = stored_names(bank)
    assert [f.name for f in stored_files(bank)] == [name]


@contextmanager
def failing_insert(bank, table: str, condition: str, error: str, sqlstate: str) -> Iterator[None]:
    """A real PostgreSQL failure, raised by a trigger, in the transaction that records the upload."""
    with bank.db.transaction() as s:
        s.execute(text("CREATE SEQUENCE test_upload_inserts"))
        s.execute(text(f"""
            CREATE FUNCTION test_fail_upload() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {condition} THEN RAISE EXCEPTION '{error}' USING ERRCODE = '{sqlstate}'; END IF;
                RETURN NEW;
            END $$"""))
        s.execute(text(f"CREATE TRIGGER test_fail_upload BEFORE INSERT ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION test_fail_upload()"))
    try:
        yield
    finally:
        with bank.db.transaction() as s:
            s.execute(text(f"DROP TRIGGER test_fail_upload ON {table}"))
            s.execute(text("DROP FUNCTION test_fail_upload()"))
            s.execute(text("DROP SEQUENCE test_upload_inserts"))


def test_an_upload_whose_transaction_rolls_back_leaves_no_file(bank, passport_png):
    customer = make_user(bank, kyc="unverified")
    # The audit row is written last, after the file: the whole accept rolls back.
    with failing_insert(bank, "audit_events", "true", "audit trail refused the row", "P0001"):
        with pytest.raises(DBAPIError, match="audit trail refused"):
            documents.submit_document(
                bank, customer, document_type="passport", data=passport_png, idempotency_key="fails"
            )
    assert stored_files(bank) == [] and counts(bank) == (0, 0)
    with bank.db.transaction() as s:
        assert s.get(User, customer.id).kyc_status == "unverified"


def test_an_accept_retried_after_a_key_race_keeps_only_the_committed_file(bank, passport_png):
    customer = make_user(bank, kyc="unverified")
    # The first insert of the idempotency record loses a (simulated) race: accept() rolls back and runs again.
    race = 'duplicate key value violates unique constraint "idempotency_keys_pkey"'
    with failing_insert(bank, "idempotency_keys", "nextval('test_upload_inserts') = 1", race, "23505"):
        accepted = documents.submit_document(
            bank, customer, document_type="passport", data=passport_png, idempotency_key="raced"
        )
    assert not accepted.replayed
    [name] = stored_names(bank)
    assert [f.name for f in stored_files(bank)] == [name]
    assert (bank.settings.data_dir / "kyc" / name).stat().st_mode & 0o777 == 0o600
