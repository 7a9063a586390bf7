"""KYC over HTTP with real processes: upload, OCR in a `kyc` worker, verified, money moves; staff review."""

from __future__ import annotations

import io
import time

import pytest

from tests.documents import Person, render_td3
from tests.e2e.stack import ADMIN, Client

pytestmark = pytest.mark.e2e


def passport(**fields: object) -> bytes:
    out = io.BytesIO()
    render_td3(Person(**fields), seed=3).save(out, "PNG")  # type: ignore[arg-type]
    return out.getvalue()


def register(client: Client, username: str, full_name: str, born: str) -> str:
    password = "harbour-lantern-4821"
    answer = client.call(
        "POST",
        "/auth/register",
        json={
            "username": username,
            "email": f"{username}@example.com",
            "password": password,
            "full_name": full_name,
            "date_of_birth": born,
        },
    )
    assert answer.status_code == 201, answer.text
    return client.login(username, password)


def wait_document(client: Client, token: str, path: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = client.http.get(
            client.base.rsplit("/api/v1", 1)[0] + path, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ).json()
        if doc["status"] != "processing":
            return dict(doc)
        time.sleep(0.5)
    raise TimeoutError(f"{path} still processing")


def test_upload_read_verify_then_send_money(e2e_env, stack_factory):
    stack = stack_factory({**e2e_env, "BANKQ_REQUIRE_KYC": "true"})
    client = Client(stack.start_api())
    stack.start_worker("kyc-worker", queues="kyc", concurrency=1)
    stack.start_worker("transfer-worker", queues="transfers,default", concurrency=1)
    admin = client.login(*ADMIN)
    anna = register(client, "anna", "Anna Maria Eriksson", "1974-08-12")
    bob = register(client, "bobby", "Bob Jones", "1980-01-01")
    source, destination = client.account(anna), client.account(bob)
    fund = client.call(
        "POST", "/deposits", admin, "fund", json={"account_id": source, "amount": "50.00", "currency": "EUR"}
    )
    assert client.wait_job(admin, fund.json()["id"])["status"] == "succeeded"
    body = {"source_account_id": source, "destination_account_id": destination, "amount": "5.00", "currency": "EUR"}
    assert client.call("POST", "/transfers", anna, "early", json=body).json()["code"] == "kyc_required"

    accepted = client.call(
        "POST",
        "/kyc/documents",
        anna,
        "passport-1",
        files={"file": ("passport.png", passport(), "image/png")},
        data={"document_type": "passport"},
    )
    assert accepted.status_code == 202, accepted.text
    job = client.wait_job(anna, accepted.json()["id"], timeout=120)
    assert job["status"] == "succeeded" and job["result"]["status"] == "verified"
    doc = wait_document(client, anna, job["links"]["resource"])
    assert doc["status"] == "verified" and doc["extracted"]["given_names"] == "ANNA MARIA"
    transfer = client.call("POST", "/transfers", anna, "after-kyc", json=body)
    assert transfer.status_code == 202
    assert client.wait_job(anna, transfer.json()["id"])["status"] == "succeeded"

    # A document whose name does not quite match goes to a person, who approves it.
    other = register(client, "annika", "Anna Marie Eriksson", "1974-08-12")
    upload = client.call(
        "POST",
        "/kyc/documents",
        other,
        "passport-2",
        files={"file": ("p.png", passport(), "image/png")},
        data={"document_type": "passport"},
    )
    result = client.wait_job(other, upload.json()["id"], timeout=120)["result"]
    assert result["status"] == "needs_review"
    teller = client.call(
        "POST",
        "/admin/users",
        admin,
        json={
            "username": "teller7",
            "email": "t7@example.com",
            "password": "quartz-meadow-5150",
            "full_name": "T Seven",
            "role": "teller",
        },
    )
    assert teller.status_code == 201
    t_token = client.login("teller7", "quartz-meadow-5150")
    [pending] = client.call("GET", "/kyc/reviews", t_token).json()["items"]
    decided = client.call(
        "POST",
        f"/kyc/documents/{pending['id']}/review",
        t_token,
        json={"decision": "approve", "reason": "Name variant checked against the original"},
    )
    assert decided.json()["status"] == "verified"
    assert client.call("GET", "/auth/me", other).json()["kyc_status"] == "verified"
