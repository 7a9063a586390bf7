"""Hostile requests, endpoint by endpoint: every one gets a 4xx problem document and writes nothing.

One world (users, accounts, a scheduled transfer, tokens) is built once for the module and shared by every case:
the cases assert that they change no row, so they cannot disturb each other. Each case counts the rows of every
table before and after its request (a failed login may UPDATE `failed_logins`, which adds no row).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from core import accounts as core_accounts
from core.accounts import ensure_cash_accounts
from core.bank import Bank
from core.clock import clock, utcnow
from core.models import Base, User
from core.transfers import TransferRequest, request_transfer
from tests import support
from tests.support import PASSWORD, auth_headers, make_user, open_account

API = "/api/v1"
PROBLEM = "application/problem+json"
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
MIB = 1024 * 1024
UNSET: Any = object()

STATEMENTS = f"{API}/accounts/{{alice_eur}}/statements"
JOB_POSTS = {f"{API}/transfers", f"{API}/deposits", f"{API}/withdrawals", STATEMENTS}


# --------------------------------------------------------------------------------------------------------------------
# The world every case runs against
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class World:
    client: Any
    bank: Bank
    ids: dict[str, str]
    auth: dict[str, str]
    users: dict[str, User] = field(default_factory=dict)


def _unsigned_token(payload: dict[str, Any], header: dict[str, Any]) -> str:
    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{b64(header)}.{b64(payload)}."


@pytest.fixture(scope="module")
def world(session_bank: Bank) -> Iterator[World]:
    import jwt as pyjwt
    from flask_jwt_extended import create_access_token

    from api import create_app

    bank = session_bank
    support.truncate_all(bank)
    ensure_cash_accounts(bank.db)
    clock.unfreeze()
    app = create_app(bank=bank)
    app.config["TESTING"] = True
    client = app.test_client()

    alice = make_user(bank, username="alice_hostile")
    bob = make_user(bank, username="bob_hostile")
    dave = make_user(bank, username="dave_unverified", kyc="unverified")
    eve = make_user(bank, username="eve_suspended")
    victim = make_user(bank, username="login_victim")
    teller = make_user(bank, role="teller", username="teller_hostile")
    admin = make_user(bank, role="admin", username="admin_hostile")

    ids = {
        "alice_id": alice.id,
        "bob_id": bob.id,
        "teller_id": teller.id,
        "alice_eur": open_account(bank, alice, "EUR", 100_000),
        "alice_jpy": open_account(bank, alice, "JPY", 100_000),
        "alice_kwd": open_account(bank, alice, "KWD", 100_000),
        "bob_eur": open_account(bank, bob, "EUR", 50_000),
        "bob_jpy": open_account(bank, bob, "JPY"),
        "bob_kwd": open_account(bank, bob, "KWD"),
        "bob_frozen": open_account(bank, bob, "EUR"),
        "dave_eur": open_account(bank, dave, "EUR", 10_000),
    }
    core_accounts.set_frozen(bank.db, teller, ids["bob_frozen"], True)
    with bank.db.transaction() as s:
        ids["cash_eur"] = str(core_accounts.cash_account(s, "EUR").id)
        bob_eur = s.get(core_accounts.Account, ids["bob_eur"])
        assert bob_eur is not None
        ids["bob_eur_number"] = bob_eur.number
    # Bob's scheduled transfer: cancellable by Bob, so a 404 for Alice can only come from ownership.
    accepted = request_transfer(bank, bob, TransferRequest(
        source_account_id=ids["bob_eur"], destination_account_id=ids["alice_eur"], amount="5.00", currency="EUR",
        execute_at=utcnow() + timedelta(days=1)), idempotency_key="bob-scheduled", body={"scheduled": True})
    ids["bob_job"] = accepted.body["id"]
    ids["bob_transfer"] = accepted.body["links"]["resource"].rsplit("/", 1)[1]

    auth = {name: auth_headers(client, user)["Authorization"]
            for name, user in (("alice", alice), ("bob", bob), ("dave", dave), ("teller", teller), ("admin", admin))}

    login = client.post(f"{API}/auth/login", json={"username": alice.username, "password": PASSWORD}).get_json()
    auth["refresh"] = f"Bearer {login['refresh_token']}"
    revoked = client.post(f"{API}/auth/login", json={"username": alice.username, "password": PASSWORD}).get_json()
    assert client.post(f"{API}/auth/logout",
                       headers={"Authorization": f"Bearer {revoked['access_token']}"}).status_code == 204
    auth["revoked"] = f"Bearer {revoked['access_token']}"

    auth["suspended"] = auth_headers(client, eve)["Authorization"]
    with bank.db.transaction() as s:
        suspended = s.get(User, eve.id)
        assert suspended is not None
        suspended.status = "suspended"

    with app.app_context():
        claims = {"role": "customer", "tv": 0}
        auth["expired"] = "Bearer " + create_access_token(identity=alice.id, additional_claims=claims,
                                                          expires_delta=timedelta(seconds=-30))
        auth["ghost"] = "Bearer " + create_access_token(identity=str(uuid.uuid4()), additional_claims=claims)
        auth["stale_version"] = "Bearer " + create_access_token(identity=alice.id,
                                                                additional_claims={"role": "customer", "tv": 7})
    now = int(utcnow().timestamp())
    payload = {"sub": alice.id, "role": "admin", "tv": 0, "type": "access", "fresh": False,
               "jti": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + 600}
    auth["forged"] = "Bearer " + pyjwt.encode(payload, "not-the-server-secret-0123456789abcdef", algorithm="HS256")
    auth["alg_none"] = "Bearer " + _unsigned_token(payload, {"alg": "none", "typ": "JWT"})
    auth["garbage"] = "Bearer not.a.jwt"
    auth["empty_bearer"] = "Bearer "
    auth["basic"] = "Basic " + base64.b64encode(f"{alice.username}:{PASSWORD}".encode()).decode()
    auth["no_scheme"] = login["access_token"]

    yield World(client=client, bank=bank, ids=ids, auth=auth,
                users={"alice": alice, "bob": bob, "victim": victim, "teller": teller, "admin": admin})
    support.truncate_all(bank)


def row_counts(bank: Bank) -> dict[str, int]:
    tables = [t.name for t in Base.metadata.sorted_tables]
    query = " UNION ALL ".join(f"SELECT '{name}', count(*) FROM {name}" for name in tables)
    with bank.db.transaction() as s:
        return {name: int(n) for name, n in s.execute(text(query))}


# --------------------------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str                       # str.format()-ed with the world's ids
    status: int
    codes: tuple[str, ...] = ()     # acceptable problem `code`s; empty: any snake_case code
    who: str | None = "alice"       # key of World.auth, or None for no Authorization header
    body: Any = UNSET               # JSON-encoded; "@name" strings are replaced by the world's ids
    raw: bytes | None = None        # sent as-is instead of `body`
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    idempotency: bool | None = None  # None: a fresh key on job POSTs

    def param(self) -> Any:
        return pytest.param(self, id=self.id)


def _resolve(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("@") and value[1:] in ids:
        return ids[value[1:]]
    if isinstance(value, dict):
        return {k: _resolve(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, ids) for v in value]
    return value


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if value is UNSET:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != key}


VALIDATION = ("validation_error",)
AMOUNT_CODES = ("invalid_amount", "validation_error")
HUGE = "x" * 100_000
OVERSIZE_PAD = "p" * (MIB + 1024)
NUL = "a\u0000b"


@dataclass(frozen=True)
class BodyEndpoint:
    name: str
    path: str
    who: str | None
    good: dict[str, Any]
    required: tuple[str, ...]
    strings: tuple[str, ...]       # string fields: wrong types, huge values and NUL are refused


REGISTER_BODY = {"username": "newcomer_01", "email": "newcomer@example.com",
                 "password": "quartz-lantern-meadow-71", "full_name": "New Comer"}
BODY_ENDPOINTS = [
    BodyEndpoint("register", f"{API}/auth/register", None, REGISTER_BODY,
                 ("username", "email", "password", "full_name"),
                 ("username", "email", "password", "full_name", "date_of_birth", "phone", "time_zone")),
    BodyEndpoint("login", f"{API}/auth/login", None, {"username": "login_victim", "password": PASSWORD},
                 ("username", "password"), ("username", "password")),
    BodyEndpoint("accounts_create", f"{API}/accounts", "alice", {"currency": "EUR", "type": "checking"},
                 ("currency", "type"), ("currency", "type", "owner_id")),
    BodyEndpoint("transfers_create", f"{API}/transfers", "alice",
                 {"source_account_id": "@alice_eur", "destination_account_id": "@bob_eur", "amount": "10.00",
                  "currency": "EUR"},
                 ("source_account_id", "amount", "currency"),
                 ("source_account_id", "destination_account_id", "destination_account_number", "amount", "currency",
                  "description", "execute_at")),
    BodyEndpoint("deposits", f"{API}/deposits", "teller",
                 {"account_id": "@bob_eur", "amount": "10.00", "currency": "EUR"},
                 ("account_id", "amount", "currency"), ("account_id", "amount", "currency", "description")),
    BodyEndpoint("withdrawals", f"{API}/withdrawals", "teller",
                 {"account_id": "@bob_eur", "amount": "10.00", "currency": "EUR"},
                 ("account_id", "amount", "currency"), ("account_id", "amount", "currency", "description")),
    BodyEndpoint("statements", STATEMENTS, "alice", {"from": "2026-01-01", "to": "2026-01-31", "format": "csv"},
                 ("from", "to", "format"), ("from", "to", "format")),
    BodyEndpoint("admin_users", f"{API}/admin/users", "admin",
                 {**REGISTER_BODY, "username": "new_teller_01", "email": "teller01@example.com", "role": "teller"},
                 ("username", "email", "password", "full_name", "role"),
                 ("username", "email", "password", "full_name", "role", "date_of_birth", "phone")),
]


def body_cases() -> list[Case]:
    """The same hostile bodies against every endpoint that takes one."""
    cases: list[Case] = []
    for ep in BODY_ENDPOINTS:
        def case(suffix: str, status: int, codes: tuple[str, ...] = (), ep: BodyEndpoint = ep, **kw: Any) -> None:
            cases.append(Case(f"{ep.name}-{suffix}", "POST", ep.path, status, codes, who=ep.who, **kw))

        good = json.dumps(ep.good).encode()
        # Not JSON at all, or not quite.
        case("json-truncated", 400, ("malformed_json",), raw=b'{"amount": ')
        case("json-single-quotes", 400, ("malformed_json",), raw=b"{'currency': 'EUR'}")
        case("json-trailing-garbage", 400, ("malformed_json",), raw=good + b"}garbage")
        case("json-invalid-utf8", 400, ("malformed_json",), raw=b'{"username": "\xff\xfe"}')
        # Python's parser takes NaN/Infinity literals as numbers: a number where a string belongs is a 422.
        case("json-nan-literal", 422, AMOUNT_CODES, raw=b'{"%s": NaN}' % ep.strings[0].encode())
        case("json-infinity-literal", 422, AMOUNT_CODES, raw=b'{"%s": -Infinity}' % ep.strings[0].encode())
        case("json-deeply-nested", 400, ("malformed_json",), raw=b"[" * 100_000 + b"]" * 100_000)
        case("json-empty-body", 422, VALIDATION, raw=b"")  # nothing sent: every required field is missing
        # Not JSON by its Content-Type.
        case("ctype-text-plain", 415, ("unsupported_media_type",), raw=good, content_type="text/plain")
        case("ctype-form", 415, ("unsupported_media_type",), raw=b"currency=EUR&type=checking",
             content_type="application/x-www-form-urlencoded")
        case("ctype-multipart", 415, ("unsupported_media_type",),
             raw=b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n",
             content_type="multipart/form-data; boundary=b")
        case("ctype-xml", 415, ("unsupported_media_type",), raw=b"<currency>EUR</currency>",
             content_type="application/xml")
        case("ctype-missing", 415, ("unsupported_media_type",), raw=good, content_type=None)
        # Too big.
        case("body-over-1mib", 413, ("payload_too_large",), body={**ep.good, "padding": OVERSIZE_PAD})
        case("body-over-1mib-in-a-field", 413, ("payload_too_large",),
             body={**ep.good, ep.strings[0]: OVERSIZE_PAD})
        # JSON, but not the object we asked for.
        for label, body in (("array", [ep.good]), ("string", "hello"), ("number", 42), ("null", None),
                            ("empty-object", {})):
            case(f"body-{label}", 422, VALIDATION, body=body)
        case("unknown-field", 422, VALIDATION, body={**ep.good, "surprise": True})
        case("unknown-field-proto", 422, VALIDATION, body={**ep.good, "__proto__": {"admin": True}})
        case("unknown-field-id", 422, VALIDATION, body={**ep.good, "id": str(uuid.uuid4())})
        for name in ep.required:
            case(f"missing-{name}", 422, VALIDATION, body=without(ep.good, name))
            case(f"null-{name}", 422, VALIDATION, body=with_(ep.good, **{name: None}))
        for name in ep.strings:
            codes = AMOUNT_CODES if name == "amount" else VALIDATION
            case(f"{name}-as-int", 422, codes, body=with_(ep.good, **{name: 12345}))
            case(f"{name}-as-list", 422, codes, body=with_(ep.good, **{name: ["x"]}))
            case(f"{name}-as-object", 422, codes, body=with_(ep.good, **{name: {"$ne": ""}}))
            case(f"{name}-as-bool", 422, codes, body=with_(ep.good, **{name: True}))
            case(f"{name}-huge", 422, codes, body=with_(ep.good, **{name: HUGE}))
            case(f"{name}-nul-char", 422, codes, body=with_(ep.good, **{name: NUL}))
            case(f"{name}-lone-surrogate", 422, codes, body=with_(ep.good, **{name: "a\ud800b"}))
    return cases


AMOUNTS_422 = [
    ("json-int", 10), ("json-float", 10.5), ("json-huge-int", 10**30), ("negative", "-1.00"), ("negative-zero", "-0"),
    ("zero", "0"), ("zero-decimals", "0.00"), ("NaN", "NaN"), ("nan", "nan"), ("Infinity", "Infinity"),
    ("exponent", "1e3"), ("exponent-upper", "1E3"), ("exponent-neg", "1e-2"), ("too-many-decimals", "1.001"),
    ("19-digits", "1234567890123456789"), ("18-digit-whole", "999999999999999999"),
    ("18-digits-1-decimal", "99999999999999999.9"), ("leading-plus", "+1.00"), ("leading-space", " 1.00"),
    ("trailing-space", "1.00 "), ("trailing-newline", "1.00\n"), ("inner-space", "1 000.00"), ("comma", "1,00"),
    ("thousands-sep", "1,000.00"), ("dot-only", "."), ("trailing-dot", "1."), ("leading-dot", ".50"),
    ("leading-zero", "01.00"), ("hex", "0x10"), ("underscore", "1_000"), ("arabic-digits", "\u0661\u0662"),
    ("fullwidth-digits", "\uff11\uff12"), ("currency-sign", "\u20ac10"), ("empty", ""), ("text", "ten"),
    ("two-dots", "1.2.3"),
]


def amount_cases() -> list[Case]:
    cases: list[Case] = []
    for ep in (e for e in BODY_ENDPOINTS if "amount" in e.good):
        for label, amount in AMOUNTS_422:
            cases.append(Case(f"{ep.name}-amount-{label}", "POST", ep.path, 422, AMOUNT_CODES, who=ep.who,
                              body=with_(ep.good, amount=amount)))
        is_transfer = ep.name == "transfers_create"
        jpy = ({"source_account_id": "@alice_jpy", "destination_account_id": "@bob_jpy"} if is_transfer
               else {"account_id": "@bob_jpy"})
        kwd = ({"source_account_id": "@alice_kwd", "destination_account_id": "@bob_kwd"} if is_transfer
               else {"account_id": "@bob_kwd"})
        for label, amount, accounts, currency in (
            ("jpy-with-decimals", "1.5", jpy, "JPY"), ("jpy-with-zero-decimals", "100.0", jpy, "JPY"),
            ("jpy-19-digits", "1234567890123456789", jpy, "JPY"), ("kwd-4-decimals", "1.0001", kwd, "KWD"),
            ("kwd-16-digit-whole", "9999999999999999", kwd, "KWD"),
        ):
            cases.append(Case(f"{ep.name}-amount-{label}", "POST", ep.path, 422, AMOUNT_CODES, who=ep.who,
                              body=with_(ep.good, amount=amount, currency=currency, **accounts)))
        for label, currency, codes in (
            ("unsupported", "XXX", ("unsupported_currency",)), ("unsupported-btc", "BTC", ("unsupported_currency",)),
            ("lowercase", "eur", ("validation_error", "unsupported_currency")),
            ("four-letters", "EURO", ("validation_error", "unsupported_currency")),
            ("trailing-newline", "EUR\n", ("validation_error", "unsupported_currency")),
            ("empty", "", ("validation_error", "unsupported_currency")),
            ("mismatch", "USD", ("currency_mismatch",)),
        ):
            cases.append(Case(f"{ep.name}-currency-{label}", "POST", ep.path, 422, codes, who=ep.who,
                              body=with_(ep.good, currency=currency)))
    return cases


def idempotency_cases() -> list[Case]:
    cases: list[Case] = []
    for ep in (e for e in BODY_ENDPOINTS if e.path in JOB_POSTS):
        def case(suffix: str, status: int, codes: tuple[str, ...], headers: tuple[tuple[str, str], ...],
                 ep: BodyEndpoint = ep) -> None:
            cases.append(Case(f"{ep.name}-idem-{suffix}", "POST", ep.path, status, codes, who=ep.who,
                              body=ep.good, headers=headers, idempotency=False))

        case("missing", 400, ("idempotency_key_required",), ())
        case("empty", 400, ("idempotency_key_required",), (("Idempotency-Key", ""),))
        case("256-chars", 400, ("idempotency_key_invalid",), (("Idempotency-Key", "k" * 256),))
        case("10k-chars", 400, ("idempotency_key_invalid",), (("Idempotency-Key", "k" * 10_000),))
        case("control-char", 400, ("idempotency_key_invalid",), (("Idempotency-Key", "key\x01one"),))
        case("tab", 400, ("idempotency_key_invalid",), (("Idempotency-Key", "key\tone"),))
        case("del-char", 400, ("idempotency_key_invalid",), (("Idempotency-Key", "key\x7f"),))
        case("latin1", 400, ("idempotency_key_invalid",), (("Idempotency-Key", "cl\u00e9"),))
    return cases


PROTECTED = [
    ("accounts_create", "POST", f"{API}/accounts", {"currency": "EUR", "type": "checking"}),
    ("accounts_get", "GET", f"{API}/accounts/{{alice_eur}}", UNSET),
    ("accounts_entries", "GET", f"{API}/accounts/{{alice_eur}}/entries", UNSET),
    ("accounts_freeze", "POST", f"{API}/accounts/{{bob_eur}}/freeze", UNSET),
    ("transfers_create", "POST", f"{API}/transfers",
     {"source_account_id": "@alice_eur", "destination_account_id": "@bob_eur", "amount": "1.00", "currency": "EUR"}),
    ("transfers_get", "GET", f"{API}/transfers/{{bob_transfer}}", UNSET),
    ("transfers_cancel", "POST", f"{API}/transfers/{{bob_transfer}}/cancel", UNSET),
    ("deposits", "POST", f"{API}/deposits", {"account_id": "@bob_eur", "amount": "1.00", "currency": "EUR"}),
    ("withdrawals", "POST", f"{API}/withdrawals", {"account_id": "@bob_eur", "amount": "1.00", "currency": "EUR"}),
    ("jobs_list", "GET", f"{API}/jobs", UNSET),
    ("jobs_get", "GET", f"{API}/jobs/{{bob_job}}", UNSET),
    ("admin_users", "POST", f"{API}/admin/users", {**REGISTER_BODY, "role": "admin"}),
    ("admin_ledger_check", "GET", f"{API}/admin/ledger/check", UNSET),
]
BAD_TOKENS = [
    ("no-token", None, ("token_missing",)), ("garbage-token", "garbage", ("token_invalid",)),
    ("empty-bearer", "empty_bearer", ("token_missing", "token_invalid")),
    ("basic-auth", "basic", ("token_missing", "token_invalid")),
    ("no-scheme", "no_scheme", ("token_missing", "token_invalid")),
    ("expired-token", "expired", ("token_expired",)), ("forged-signature", "forged", ("token_invalid",)),
    ("alg-none", "alg_none", ("token_invalid",)), ("refresh-as-access", "refresh", ("token_invalid",)),
    ("revoked-token", "revoked", ("token_revoked",)), ("suspended-user", "suspended", ("token_revoked",)),
    ("unknown-user", "ghost", ("token_revoked",)), ("stale-token-version", "stale_version", ("token_revoked",)),
]


def auth_cases() -> list[Case]:
    return [Case(f"{name}-{label}", method, path, 401, codes, who=who, body=body)
            for name, method, path, body in PROTECTED for label, who, codes in BAD_TOKENS]


def access_cases() -> list[Case]:
    forbidden = ("forbidden",)
    acc, tr, job = f"{API}/accounts", f"{API}/transfers", f"{API}/jobs"
    deposit = {"account_id": "@alice_eur", "amount": "1.00", "currency": "EUR"}
    return [
        # Customers on staff endpoints.
        Case("customer-freeze-other", "POST", f"{acc}/{{bob_eur}}/freeze", 403, forbidden),
        Case("customer-freeze-own", "POST", f"{acc}/{{alice_eur}}/freeze", 403, forbidden),
        Case("customer-unfreeze-frozen", "POST", f"{acc}/{{bob_frozen}}/unfreeze", 403, forbidden),
        Case("customer-deposit-to-self", "POST", f"{API}/deposits", 403, forbidden, body=deposit),
        Case("customer-withdrawal", "POST", f"{API}/withdrawals", 403, forbidden, body=deposit),
        Case("customer-admin-users", "POST", f"{API}/admin/users", 403, forbidden,
             body={**REGISTER_BODY, "role": "admin"}),
        Case("customer-ledger-check", "GET", f"{API}/admin/ledger/check", 403, forbidden),
        Case("teller-admin-users", "POST", f"{API}/admin/users", 403, forbidden, who="teller",
             body={**REGISTER_BODY, "role": "admin"}),
        Case("teller-ledger-check", "GET", f"{API}/admin/ledger/check", 403, forbidden, who="teller"),
        Case("customer-open-account-for-other", "POST", acc, 403, forbidden,
             body={"currency": "EUR", "type": "checking", "owner_id": "@bob_id"}),
        # Another customer's resources are simply not there.
        Case("other-account-get", "GET", f"{acc}/{{bob_eur}}", 404, ("account_not_found",)),
        Case("other-account-entries", "GET", f"{acc}/{{bob_eur}}/entries", 404, ("account_not_found",)),
        Case("other-account-statements", "POST", f"{acc}/{{bob_eur}}/statements", 404, ("account_not_found",),
             body={"from": "2026-01-01", "to": "2026-01-31", "format": "pdf"}, idempotency=True),
        Case("other-report-get", "GET", f"{API}/reports/{{bob_job}}", 404, ("report_not_found",)),
        Case("other-report-download", "GET", f"{API}/reports/{{bob_job}}/download", 404, ("report_not_found",)),
        Case("other-transfer-get", "GET", f"{tr}/{{bob_transfer}}", 404, ("transfer_not_found",)),
        Case("other-transfer-cancel", "POST", f"{tr}/{{bob_transfer}}/cancel", 404, ("transfer_not_found",)),
        Case("other-job-get", "GET", f"{job}/{{bob_job}}", 404, ("job_not_found",)),
        Case("teller-other-job-get", "GET", f"{job}/{{bob_job}}", 404, ("job_not_found",), who="teller"),
        Case("cash-account-get", "GET", f"{acc}/{{cash_eur}}", 404, ("account_not_found",), who="teller"),
        Case("cash-account-entries", "GET", f"{acc}/{{cash_eur}}/entries", 404, ("account_not_found",), who="admin"),
        Case("cash-account-freeze", "POST", f"{acc}/{{cash_eur}}/freeze", 404, ("account_not_found",), who="teller"),
        # Transfers that touch what the caller may not touch.
        Case("transfer-from-other-account", "POST", tr, 404, ("account_not_found",),
             body={"source_account_id": "@bob_eur", "destination_account_id": "@alice_eur", "amount": "1.00",
                   "currency": "EUR"}),
        Case("transfer-from-cash-account", "POST", tr, 404, ("account_not_found",),
             body={"source_account_id": "@cash_eur", "destination_account_id": "@alice_eur", "amount": "1.00",
                   "currency": "EUR"}),
        Case("transfer-to-cash-account", "POST", tr, 404, ("account_not_found",),
             body={"source_account_id": "@alice_eur", "destination_account_id": "@cash_eur", "amount": "1.00",
                   "currency": "EUR"}),
        Case("transfer-to-cash-account-number", "POST", tr, 404, ("account_not_found",),
             body={"source_account_id": "@alice_eur", "destination_account_number": "BANKQ-CASH-EUR",
                   "amount": "1.00", "currency": "EUR"}),
        Case("transfer-to-unknown-account", "POST", tr, 404, ("account_not_found",),
             body={"source_account_id": "@alice_eur", "destination_account_id": str(uuid.uuid4()),
                   "amount": "1.00", "currency": "EUR"}),
        Case("transfer-to-unknown-number", "POST", tr, 404, ("account_not_found",),
             body={"source_account_id": "@alice_eur", "destination_account_number": "00000000000",
                   "amount": "1.00", "currency": "EUR"}),
        Case("transfer-to-same-account", "POST", tr, 422, ("same_account",),
             body={"source_account_id": "@alice_eur", "destination_account_id": "@alice_eur", "amount": "1.00",
                   "currency": "EUR"}),
        Case("transfer-to-frozen-account", "POST", tr, 422, ("account_frozen",),
             body={"source_account_id": "@alice_eur", "destination_account_id": "@bob_frozen", "amount": "1.00",
                   "currency": "EUR"}),
        Case("transfer-cross-currency", "POST", tr, 422, ("currency_mismatch",),
             body={"source_account_id": "@alice_eur", "destination_account_id": "@bob_jpy", "amount": "1",
                   "currency": "JPY"}),
        Case("transfer-both-destinations", "POST", tr, 422, VALIDATION,
             body={"source_account_id": "@alice_eur", "destination_account_id": "@bob_eur",
                   "destination_account_number": "@bob_eur_number", "amount": "1.00", "currency": "EUR"}),
        Case("transfer-no-destination", "POST", tr, 422, VALIDATION,
             body={"source_account_id": "@alice_eur", "amount": "1.00", "currency": "EUR"}),
        Case("transfer-kyc-unverified", "POST", tr, 403, ("kyc_required",), who="dave",
             body={"source_account_id": "@dave_eur", "destination_account_id": "@bob_eur", "amount": "1.00",
                   "currency": "EUR"}),
        Case("deposit-to-frozen-account", "POST", f"{API}/deposits", 422, ("account_frozen",), who="teller",
             body={"account_id": "@bob_frozen", "amount": "1.00", "currency": "EUR"}),
        Case("deposit-to-cash-account", "POST", f"{API}/deposits", 404, ("account_not_found",), who="teller",
             body={"account_id": "@cash_eur", "amount": "1.00", "currency": "EUR"}),
        # Routes that take no body still refuse an oversized one (before anything is looked up or written).
        Case("freeze-body-over-1mib", "POST", f"{acc}/{{bob_eur}}/freeze", 413, ("payload_too_large",),
             who="teller", body={"padding": OVERSIZE_PAD}),
        Case("cancel-own-body-over-1mib", "POST", f"{tr}/{{bob_transfer}}/cancel", 413, ("payload_too_large",),
             who="bob", body={"padding": OVERSIZE_PAD}),
        Case("ledger-check-unknown-method", "DELETE", f"{API}/admin/ledger/check", 405, ("method_not_allowed",),
             who="admin"),
        Case("deposit-to-unknown-account", "POST", f"{API}/deposits", 404, ("account_not_found",), who="teller",
             body={"account_id": str(uuid.uuid4()), "amount": "1.00", "currency": "EUR"}),
    ]


def semantic_cases() -> list[Case]:
    """Well-formed bodies whose values the rules refuse."""
    tr = {"source_account_id": "@alice_eur", "destination_account_id": "@bob_eur", "amount": "1.00",
          "currency": "EUR"}
    reg, acc = f"{API}/auth/register", f"{API}/accounts"
    return [
        Case("register-username-taken", "POST", reg, 409, ("username_taken",), who=None,
             body=with_(REGISTER_BODY, username="alice_hostile")),
        Case("register-username-taken-other-case", "POST", reg, 409, ("username_taken",), who=None,
             body=with_(REGISTER_BODY, username="ALICE_Hostile")),
        Case("register-email-taken-other-case", "POST", reg, 409, ("email_taken",), who=None,
             body=with_(REGISTER_BODY, email="Alice_Hostile@EXAMPLE.com")),
        Case("register-weak-password-short", "POST", reg, 422, ("weak_password", "validation_error"), who=None,
             body=with_(REGISTER_BODY, password="short1!")),
        Case("register-weak-password-common", "POST", reg, 422, ("weak_password",), who=None,
             body=with_(REGISTER_BODY, password="password123")),
        Case("register-password-contains-username", "POST", reg, 422, ("weak_password",), who=None,
             body=with_(REGISTER_BODY, password="newcomer_01-is-me")),
        Case("register-password-257-chars", "POST", reg, 422, ("weak_password", "validation_error"), who=None,
             body=with_(REGISTER_BODY, password="Zq9!" * 64 + "x")),
        Case("register-email-invalid", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, email="not-an-email")),
        Case("register-email-crlf-injection", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, email="a@example.com\r\nBcc: victim@example.com")),
        Case("register-email-too-long", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, email="a" * 250 + "@example.com")),
        Case("register-username-spaces", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, username="new comer")),
        Case("register-username-unicode", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, username="n\u00e9wcomer")),
        Case("register-username-sql", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, username="x'; DROP TABLE users; --")),
        Case("register-full-name-empty", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, full_name="")),
        Case("register-birth-date-future", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, date_of_birth="2999-01-01")),
        Case("register-birth-date-ancient", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, date_of_birth="0001-01-01")),
        Case("register-birth-date-invalid", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, date_of_birth="2000-13-45")),
        Case("register-birth-date-datetime", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, date_of_birth="2000-01-01T00:00:00Z")),
        Case("register-phone-letters", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, phone="call me")),
        Case("register-time-zone-unknown", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, time_zone="Mars/Olympus_Mons")),
        Case("register-time-zone-path", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, time_zone="../../../etc/passwd")),
        Case("register-time-zone-wrong-case", "POST", reg, 422, VALIDATION, who=None,
             body=with_(REGISTER_BODY, time_zone="europe/berlin")),
        Case("me-time-zone-unknown", "PATCH", f"{API}/auth/me", 422, VALIDATION, who="alice",
             body={"time_zone": "Europe/Atlantis"}),
        Case("me-role-escalation", "PATCH", f"{API}/auth/me", 422, VALIDATION, who="alice",
             body={"role": "admin"}),
        Case("register-role-escalation", "POST", reg, 422, VALIDATION, who=None,
             body={**REGISTER_BODY, "role": "admin"}),
        Case("register-kyc-escalation", "POST", reg, 422, VALIDATION, who=None,
             body={**REGISTER_BODY, "kyc_status": "verified"}),
        Case("login-wrong-password", "POST", f"{API}/auth/login", 401, ("invalid_credentials",), who=None,
             body={"username": "login_victim", "password": "wrong-password-123"}),
        Case("login-unknown-user", "POST", f"{API}/auth/login", 401, ("invalid_credentials",), who=None,
             body={"username": "nobody_here", "password": PASSWORD}),
        Case("login-username-65-chars", "POST", f"{API}/auth/login", 422, VALIDATION, who=None,
             body={"username": "u" * 65, "password": PASSWORD}),
        Case("login-empty-password", "POST", f"{API}/auth/login", 422, VALIDATION, who=None,
             body={"username": "login_victim", "password": ""}),
        Case("admin-users-unknown-role", "POST", f"{API}/admin/users", 422, VALIDATION, who="admin",
             body={**REGISTER_BODY, "role": "superuser"}),
        Case("admin-users-weak-password", "POST", f"{API}/admin/users", 422, ("weak_password",), who="admin",
             body={**REGISTER_BODY, "role": "teller", "password": "password123"}),
        Case("accounts-create-unsupported-currency", "POST", acc, 422, ("unsupported_currency",),
             body={"currency": "XXX", "type": "checking"}),
        Case("accounts-create-lowercase-currency", "POST", acc, 422, VALIDATION,
             body={"currency": "eur", "type": "checking"}),
        Case("accounts-create-unknown-type", "POST", acc, 422, VALIDATION,
             body={"currency": "EUR", "type": "loan"}),
        Case("accounts-create-cash-type", "POST", acc, 422, VALIDATION, body={"currency": "EUR", "type": "cash"}),
        Case("accounts-create-staff-without-owner", "POST", acc, 422, VALIDATION, who="teller",
             body={"currency": "EUR", "type": "checking"}),
        Case("accounts-create-staff-unknown-owner", "POST", acc, 404, ("customer_not_found",), who="teller",
             body={"currency": "EUR", "type": "checking", "owner_id": str(uuid.uuid4())}),
        Case("accounts-create-staff-for-staff", "POST", acc, 404, ("customer_not_found",), who="admin",
             body={"currency": "EUR", "type": "checking", "owner_id": "@teller_id"}),
        Case("transfer-execute-at-garbage", "POST", f"{API}/transfers", 422, VALIDATION,
             body=with_(tr, execute_at="tomorrow")),
        Case("transfer-execute-at-naive", "POST", f"{API}/transfers", 422, VALIDATION,
             body=with_(tr, execute_at="2030-01-01 10:00")),
        Case("transfer-execute-at-epoch-number", "POST", f"{API}/transfers", 422, VALIDATION,
             body=with_(tr, execute_at=1893456000)),
        Case("transfer-execute-at-ten-years", "POST", f"{API}/transfers", 422, VALIDATION,
             body=with_(tr, execute_at=(utcnow() + timedelta(days=3650)).isoformat())),
        Case("transfer-execute-at-year-9999-west", "POST", f"{API}/transfers", 422, VALIDATION,
             body=with_(tr, execute_at="9999-12-31T23:59:59-14:00")),
        Case("transfer-execute-at-year-1-east", "POST", f"{API}/transfers", 422, VALIDATION,
             body=with_(tr, execute_at="0001-01-01T00:00:00+14:00")),
        Case("transfer-description-501-chars", "POST", f"{API}/transfers", 422, VALIDATION,
             body=with_(tr, description="d" * 501)),
        Case("transfer-destination-number-35-chars", "POST", f"{API}/transfers", 422, VALIDATION,
             body=with_(tr, destination_account_id=UNSET, destination_account_number="9" * 35)),
        Case("transfer-duplicate-key-negative-wins", "POST", f"{API}/transfers", 422, AMOUNT_CODES,
             raw=b'{"source_account_id": "@alice_eur", "destination_account_id": "@bob_eur", "amount": "1.00", '
                 b'"currency": "EUR", "amount": "-1.00"}'),
    ]


BAD_IDS = [
    ("id-very-long", "a" * 5000, 404), ("id-37-chars", "0" * 37, 404), ("id-uuid-nil", str(uuid.UUID(int=0)), 404),
    ("id-unicode", "\u8d26\u6237-\u00fc-\U0001f600", 404), ("id-rtl-override", "\u202eabc", 404),
    ("id-nul", "%00", 404), ("id-nul-in-uuid", "00000000-0000-0000-0000-00000000000%00", 404),
    ("id-newline", "%0A", 404), ("id-space", "%20", 404), ("id-sql", "'%20OR%201=1%20--", 404),
    ("id-traversal", "..", 404), ("id-traversal-encoded", "..%2F..%2Fadmin%2Fledger%2Fcheck", 404),
    ("id-traversal-double-encoded", "..%252F..%252Fadmin", 404), ("id-backslash", "..%5C..%5Cetc", 404),
    ("id-percent", "%25", 404), ("id-json", "%7B%22a%22:1%7D", 404),
]


def id_cases() -> list[Case]:
    endpoints = [
        ("accounts_get", "GET", f"{API}/accounts/{{}}", "alice", ("account_not_found", "not_found")),
        ("accounts_entries", "GET", f"{API}/accounts/{{}}/entries", "alice", ("account_not_found", "not_found")),
        ("accounts_freeze", "POST", f"{API}/accounts/{{}}/freeze", "teller", ("account_not_found", "not_found")),
        ("transfers_get", "GET", f"{API}/transfers/{{}}", "alice", ("transfer_not_found", "not_found")),
        ("transfers_cancel", "POST", f"{API}/transfers/{{}}/cancel", "alice", ("transfer_not_found", "not_found")),
        ("jobs_get", "GET", f"{API}/jobs/{{}}", "alice", ("job_not_found", "not_found")),
        ("jobs_get_admin", "GET", f"{API}/jobs/{{}}", "admin", ("job_not_found", "not_found")),
    ]
    return [Case(f"{name}-{label}", method, template.replace("{}", bad), status, codes, who=who)
            for name, method, template, who, codes in endpoints for label, bad, status in BAD_IDS]


def query_cases() -> list[Case]:
    lists = [("jobs_list", f"{API}/jobs"), ("accounts_entries", f"{API}/accounts/{{alice_eur}}/entries")]
    bad = [
        ("limit-zero", "limit=0"), ("limit-negative", "limit=-1"), ("limit-501", "limit=501"),
        ("limit-huge", "limit=" + "9" * 400), ("limit-text", "limit=ten"), ("limit-float", "limit=1.5"),
        ("limit-exponent", "limit=1e2"), ("limit-empty", "limit="), ("cursor-garbage", "cursor=not-a-cursor"),
        ("cursor-huge", "cursor=" + "A" * 5_000), ("cursor-wrong-shape", "cursor=WzEsMiwzXQ"),
        ("cursor-nul", "cursor=%00"),
    ]
    cases = [Case(f"{name}-{label}", "GET", f"{path}?{qs}", 422, ("validation_error", "invalid_cursor"))
             for name, path in lists for label, qs in bad]
    cases += [
        Case("jobs_list-status-bogus", "GET", f"{API}/jobs?status=bogus", 422, VALIDATION),
        Case("jobs_list-kind-huge", "GET", f"{API}/jobs?kind=" + "k" * 1000, 422, VALIDATION),
        Case("jobs_list-kind-nul", "GET", f"{API}/jobs?kind=%00", 422, VALIDATION),
        Case("jobs_list-status-nul", "GET", f"{API}/jobs?status=%00", 422, VALIDATION),
    ]
    return cases


CASES = [*body_cases(), *amount_cases(), *idempotency_cases(), *auth_cases(), *access_cases(), *semantic_cases(),
         *id_cases(), *query_cases()]
_ids = [c.id for c in CASES]
assert len(_ids) == len(set(_ids)), sorted({i for i in _ids if _ids.count(i) > 1})


# --------------------------------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------------------------------

def send(world: World, case: Case) -> Any:
    headers: dict[str, str] = {}
    if case.who is not None:
        headers["Authorization"] = world.auth[case.who]
    if case.idempotency or (case.idempotency is None and case.method == "POST" and case.path in JOB_POSTS):
        headers["Idempotency-Key"] = f"hostile-{uuid.uuid4()}"
    headers.update(dict(case.headers))
    data: bytes | None = None
    if case.raw is not None:
        data = re.sub(rb'"@(\w+)"', lambda m: json.dumps(world.ids[m.group(1).decode()]).encode(), case.raw)
    elif case.body is not UNSET:
        data = json.dumps(_resolve(case.body, world.ids)).encode()
    kwargs: dict[str, Any] = {"headers": headers}
    if data is not None:
        kwargs["data"] = data
        if case.content_type is not None:
            kwargs["content_type"] = case.content_type
    path = case.path.format(**world.ids)
    return world.client.open(path, method=case.method, **kwargs)


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_hostile_request_is_refused_without_side_effects(world: World, case: Case) -> None:
    before = row_counts(world.bank)
    response = send(world, case)
    after = row_counts(world.bank)

    body = response.get_json(silent=True, force=True)
    assert response.status_code < 500, (response.status_code, body)
    assert response.status_code == case.status, (response.status_code, body)
    assert response.mimetype == PROBLEM, (response.mimetype, response.get_data()[:300])
    assert isinstance(body, dict), response.get_data()[:300]
    for key in ("type", "title", "status", "detail", "code"):
        assert isinstance(body.get(key), str if key != "status" else int), (key, body)
    assert body["status"] == response.status_code
    assert SNAKE.match(body["code"]), body
    if case.codes:
        assert body["code"] in case.codes, body
    if response.status_code == 401:
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert after == before, {t: (before[t], after[t]) for t in before if before[t] != after[t]}


def test_the_hostile_logins_together_do_not_lock_the_victim(world: World) -> None:
    """The login cases above fail at most a couple of times; all of them in a row must not trip the lockout (an
    audit row). They run here, from a clean slate, so this does not depend on which tests ran before."""
    with world.bank.db.transaction() as s:
        s.execute(update(User).where(User.username == "login_victim").values(failed_logins=0, locked_until=None))
    logins = [case for case in CASES if case.path == f"{API}/auth/login"]
    assert len(logins) > 5
    for case in logins:
        assert send(world, case).status_code == case.status, case.id
    response = world.client.post(f"{API}/auth/login", json={"username": "login_victim", "password": PASSWORD})
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("9999999999999999.99", "EUR", 999_999_999_999_999_999),
    ("999999999999999999", "JPY", 999_999_999_999_999_999),
    ("999999999999999.999", "KWD", 999_999_999_999_999_999),
    ("0.01", "EUR", 1),
    ("125.5", "EUR", 12_550),
], ids=["eur-largest", "jpy-largest", "kwd-largest", "eur-smallest", "eur-one-decimal"])
def test_the_amount_rules_still_accept_the_largest_and_smallest_amounts(amount: str, currency: str, minor: int) -> None:
    """The other side of the 18-digit rule above: 18 digits in minor units still parse (and fit a BIGINT)."""
    from core.money import parse_amount

    assert parse_amount(amount, currency) == minor


def test_an_over_long_url_is_a_414_problem_from_the_app(world: World) -> None:
    """gunicorn (api.gunicorn_conf) lets URLs a little longer than MAX_URL_BYTES through; the app refuses them.
    (The module's world, not the `client` fixture: that one empties the database under the other tests here.)"""
    from api import MAX_URL_BYTES

    client = world.client
    path = f"{API}/jobs?status="
    at_limit = client.get(path + "q" * (MAX_URL_BYTES - len(path)))
    assert at_limit.status_code == 401  # not refused for its length: no token
    over = client.get(path + "q" * (MAX_URL_BYTES - len(path) + 1))
    assert over.status_code == 414 and over.mimetype == PROBLEM
    assert over.get_json()["code"] == "uri_too_long"
    unknown = client.get("/nowhere?" + "q" * MAX_URL_BYTES)
    assert unknown.status_code == 414 and unknown.mimetype == PROBLEM
