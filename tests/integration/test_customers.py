"""Customers (staff) on real PostgreSQL: search, profile with accounts, edits, walk-in registration through the
password-reset flow, suspension and closing, role checks and refused input that writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core import password_reset
from core.errors import Forbidden
from core.models import Account, AuditEvent, User
from core.transfers import TransferRequest, request_transfer
from tests.integration.test_password_reset import emailed_code
from tests.support import PASSWORD, auth_headers, make_user, open_account

NEW_PASSWORD = "quiet-lantern-meadow-42"


@pytest.fixture(autouse=True)
def quick_floor(monkeypatch):
    monkeypatch.setattr(password_reset, "MIN_SECONDS", 0.02)


@pytest.fixture
def teller(bank, client):
    user = make_user(bank, role="teller")
    return auth_headers(client, user)


def load(bank, user_id: str) -> User:
    with bank.db.transaction() as s:
        user = s.get(User, user_id)
        assert user is not None
        return user


def audit_actions(bank) -> list[str]:
    with bank.db.transaction() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def counts(bank) -> tuple[int, int, int]:
    with bank.db.transaction() as s:
        return (
            int(s.scalar(select(func.count()).select_from(User)) or 0),
            int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0),
            int(s.scalar(select(func.count()).select_from(Account)) or 0),
        )


def search(client, headers, **params):
    answer = client.get("/api/v1/customers", query_string=params, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def ids(page) -> set[str]:
    return {item["id"] for item in page["items"]}


def test_search_by_each_field_case_insensitively(bank, client, teller) -> None:
    alice = make_user(bank, username="alice_w", full_name="Alice Wonder", phone="+44 20 7946 0018")
    bob = make_user(bank, username="bob_b", full_name="Bob Builder", phone="+1 555 0100")
    make_user(bank, role="teller", username="alice_teller", full_name="Alice Teller")
    account_id = open_account(bank, bob)
    with bank.db.transaction() as s:
        search_number = s.get(Account, account_id).number

    assert ids(search(client, teller, q="wONDer")) == {alice.id}  # full name; staff are never listed
    assert ids(search(client, teller, q="ALICE_W@EXAMPLE")) == {alice.id}  # email
    assert ids(search(client, teller, q="7946")) == {alice.id}  # phone
    assert ids(search(client, teller, q="Bob_")) == {bob.id}  # username ("_" is literal, not a wildcard)
    assert ids(search(client, teller, q=search_number)) == {bob.id}  # exact account number
    assert ids(search(client, teller, q=search_number[:-2])) == set()  # a partial number is not a match
    assert ids(search(client, teller, q="%")) == set()
    everyone = search(client, teller)
    assert ids(everyone) == {alice.id, bob.id} and everyone["next_cursor"] is None
    item = next(i for i in everyone["items"] if i["id"] == alice.id)
    assert item["role"] == "customer" and "password_hash" not in item


def test_search_pages_with_a_cursor(bank, client, teller) -> None:
    made = {make_user(bank, username=f"pager_{i}").id for i in range(5)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"q": "pager_", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = search(client, teller, **params)
        pages += 1
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 5 and set(seen) == made
    bad = client.get("/api/v1/customers", query_string={"cursor": "nonsense"}, headers=teller)
    assert (bad.status_code, bad.get_json()["code"]) == (422, "invalid_cursor")
    assert client.get("/api/v1/customers", query_string={"limit": 0}, headers=teller).status_code == 422


def test_profile_has_accounts_kyc_and_status(bank, client, teller) -> None:
    customer = make_user(bank, kyc="pending")
    first = open_account(bank, customer, balance_minor=1234)
    second = open_account(bank, customer, currency="USD")
    answer = client.get(f"/api/v1/customers/{customer.id}", headers=teller)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["id"] == customer.id and body["kyc_status"] == "pending" and body["status"] == "active"
    assert [a["id"] for a in body["accounts"]] == [first, second]
    assert body["accounts"][0]["balance"] == "12.34" and body["accounts"][1]["currency"] == "USD"

    missing = client.get("/api/v1/customers/no-such-id", headers=teller)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "not_found")
    staff = make_user(bank, role="admin")
    assert client.get(f"/api/v1/customers/{staff.id}", headers=teller).status_code == 404  # not a customer


def test_patch_profile_is_validated_audited_and_refuses_a_taken_email(bank, client, teller) -> None:
    customer = make_user(bank)
    other = make_user(bank)
    answer = client.patch(
        f"/api/v1/customers/{customer.id}",
        json={"full_name": " New Name ", "email": "New.Address@Example.com", "phone": "+49 30 123456",
              "date_of_birth": "1980-02-29", "time_zone": "Europe/Berlin"},
        headers=teller,
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["full_name"], body["email"], body["phone"]) == ("New Name", "new.address@example.com", "+49 30 123456")
    assert (body["date_of_birth"], body["time_zone"], body["accounts"]) == ("1980-02-29", "Europe/Berlin", [])
    assert "customer.updated" in audit_actions(bank)

    taken = client.patch(f"/api/v1/customers/{customer.id}", json={"email": other.email.upper()}, headers=teller)
    assert (taken.status_code, taken.get_json()["code"]) == (409, "email_taken")
    same = client.patch(f"/api/v1/customers/{customer.id}", json={"email": "new.address@example.com"}, headers=teller)
    assert same.status_code == 200
    assert load(bank, customer.id).email == "new.address@example.com"
    gone = client.patch("/api/v1/customers/nobody", json={"full_name": "X"}, headers=teller)
    assert gone.status_code == 404


def test_walk_in_customer_sets_a_password_by_reset_and_logs_in(bank, client, teller) -> None:
    answer = client.post(
        "/api/v1/customers",
        json={"username": "Walk_In", "email": "Walk.In@Example.com", "full_name": "Walk In", "phone": "+1 555 0199"},
        headers=teller,
    )
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert (body["username"], body["email"], body["role"], body["status"]) == (
        "walk_in", "walk.in@example.com", "customer", "active")
    stored = load(bank, body["id"])
    assert stored.password_hash is None
    assert "customer.registered" in audit_actions(bank)
    # No password: no login with anything, not even an empty one.
    refused = client.post("/api/v1/auth/login", json={"username": "walk_in", "password": PASSWORD})
    assert refused.status_code == 401

    assert client.post("/api/v1/auth/password-reset", json={"email": "walk.in@example.com"}).status_code == 202
    code = emailed_code(bank, stored)
    done = client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"email": "walk.in@example.com", "code": code, "new_password": NEW_PASSWORD},
    )
    assert done.status_code == 204
    assert load(bank, body["id"]).password_hash
    login = client.post("/api/v1/auth/login", json={"username": "walk_in", "password": NEW_PASSWORD})
    assert login.status_code == 200

    again = client.post("/api/v1/customers", json={"username": "walk_in", "email": "x@example.com",
                                                   "full_name": "X"}, headers=teller)
    assert (again.status_code, again.get_json()["code"]) == (409, "username_taken")
    again = client.post("/api/v1/customers", json={"username": "walk_in2", "email": "WALK.IN@example.com",
                                                   "full_name": "X"}, headers=teller)
    assert (again.status_code, again.get_json()["code"]) == (409, "email_taken")


def test_suspended_customer_cannot_use_tokens_log_in_or_move_money(bank, client, teller) -> None:
    customer = make_user(bank)
    source = open_account(bank, customer, balance_minor=10_000)
    destination = open_account(bank, make_user(bank))
    headers = auth_headers(client, customer)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200

    answer = client.patch(f"/api/v1/customers/{customer.id}/status", json={"status": "suspended"}, headers=teller)
    assert answer.status_code == 200 and answer.get_json()["status"] == "suspended"
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    login = client.post("/api/v1/auth/login", json={"username": customer.username, "password": PASSWORD})
    assert (login.status_code, login.get_json()["code"]) == (403, "account_suspended")
    transfer = client.post(
        "/api/v1/transfers",
        json={"source_account_id": source, "destination_account_id": destination, "amount": "1.00",
              "currency": "EUR"},
        headers={**headers, "Idempotency-Key": "suspended-1"},
    )
    assert transfer.status_code == 401
    # Money movement itself refuses a non-active holder (e.g. a standing order running for them).
    with pytest.raises(Forbidden) as refused:
        request_transfer(
            bank,
            load(bank, customer.id),
            TransferRequest(source_account_id=source, destination_account_id=destination, amount="1.00",
                            currency="EUR"),
            idempotency_key="suspended-2",
            body={},
            preauthorised=True,
        )
    assert refused.value.code == "customer_not_active"
    assert "customer.status_changed" in audit_actions(bank)

    back = client.patch(f"/api/v1/customers/{customer.id}/status", json={"status": "active"}, headers=teller)
    assert back.status_code == 200
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401  # old tokens stay dead
    assert client.post("/api/v1/auth/login", json={"username": customer.username,
                                                   "password": PASSWORD}).status_code == 200


def test_closing_needs_zero_balances_and_closes_the_accounts(bank, client, teller) -> None:
    customer = make_user(bank)
    funded = open_account(bank, customer, balance_minor=500)
    empty = open_account(bank, customer)
    refused = client.patch(f"/api/v1/customers/{customer.id}/status", json={"status": "closed"}, headers=teller)
    assert (refused.status_code, refused.get_json()["code"]) == (409, "balance_not_zero")
    assert load(bank, customer.id).status == "active"

    with bank.db.transaction() as s:  # the money leaves (in a real bank: a withdrawal)
        s.get(Account, funded).balance = 0
    closed = client.patch(f"/api/v1/customers/{customer.id}/status", json={"status": "closed"}, headers=teller)
    assert closed.status_code == 200, closed.get_json()
    body = closed.get_json()
    assert body["status"] == "closed" and {a["status"] for a in body["accounts"]} == {"closed"}
    with bank.db.transaction() as s:
        assert {s.get(Account, funded).status, s.get(Account, empty).status} == {"closed"}
    login = client.post("/api/v1/auth/login", json={"username": customer.username, "password": PASSWORD})
    assert (login.status_code, login.get_json()["code"]) == (403, "account_closed")


def test_customers_are_refused_everywhere(bank, client) -> None:
    customer = make_user(bank)
    other = make_user(bank)
    headers = auth_headers(client, customer)
    before = counts(bank)
    answers = [
        client.get("/api/v1/customers", headers=headers),
        client.get(f"/api/v1/customers/{other.id}", headers=headers),
        client.get(f"/api/v1/customers/{customer.id}", headers=headers),
        client.patch(f"/api/v1/customers/{other.id}", json={"full_name": "Owned"}, headers=headers),
        client.post("/api/v1/customers", json={"username": "sneaky", "email": "s@example.com",
                                               "full_name": "S"}, headers=headers),
        client.patch(f"/api/v1/customers/{other.id}/status", json={"status": "suspended"}, headers=headers),
    ]
    assert [(a.status_code, a.get_json()["code"]) for a in answers] == [(403, "forbidden")] * 6
    assert client.get("/api/v1/customers").status_code == 401
    assert counts(bank) == before and load(bank, other.id).status == "active"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "", {"username": "x", "email": "a@example.com", "full_name": "A"}),  # username too short
        ("post", "", {"username": "valid_name", "email": "not-an-email", "full_name": "A"}),
        ("post", "", {"username": "valid_name", "email": "a@example.com", "full_name": ""}),
        ("post", "", {"username": "valid_name", "email": "a@example.com", "full_name": "A", "password": "p"}),
        ("post", "", {"username": "valid_name", "email": "a@example.com", "full_name": "A",
                      "date_of_birth": "2999-01-01"}),
        ("post", "", {"username": "valid_name", "email": "a@example.com", "full_name": "A", "phone": "call me"}),
        ("patch", "/{id}", {"time_zone": "Mars/Olympus"}),
        ("patch", "/{id}", {"date_of_birth": "1700-01-01"}),
        ("patch", "/{id}", {"full_name": "   "}),
        ("patch", "/{id}", {"email": "nope"}),
        ("patch", "/{id}", {"role": "admin"}),
        ("patch", "/{id}", {"full_name": "OK", "time_zone": "Nowhere/Town"}),  # nothing of it is applied
        ("patch", "/{id}/status", {"status": "deleted"}),
        ("patch", "/{id}/status", {}),
    ],
)
def test_bad_input_is_422_and_writes_nothing(bank, client, teller, method, path, body) -> None:
    customer = make_user(bank, full_name="Unchanged")
    before = counts(bank)
    answer = getattr(client, method)(f"/api/v1/customers{path.format(id=customer.id)}", json=body, headers=teller)
    assert answer.status_code == 422, answer.get_json()
    assert counts(bank) == before
    stored = load(bank, customer.id)
    unchanged = ("Unchanged", "active", "customer", "UTC")
    assert (stored.full_name, stored.status, stored.role, stored.time_zone) == unchanged


def test_hostile_search_and_ids_are_refused_cleanly(bank, client, teller) -> None:
    assert client.get("/api/v1/customers", query_string={"q": "a\x00b"}, headers=teller).status_code == 422
    assert client.get("/api/v1/customers", query_string={"q": "x" * 201}, headers=teller).status_code == 422
    assert client.get("/api/v1/customers/a%00b", headers=teller).status_code == 404
    assert client.get(f"/api/v1/customers/{'x' * 300}", headers=teller).status_code == 404
    assert client.patch(f"/api/v1/customers/{'x' * 300}/status", json={"status": "active"},
                        headers=teller).status_code == 404
