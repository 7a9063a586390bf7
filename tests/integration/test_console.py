"""The console's pages through Flask's test client on real PostgreSQL and Redis: sessions, CSRF, roles, limits,
bad input, idempotent forms, error pages, pagination, schedules, the job stream, CORS and the local Swagger UI."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from core import accounts as core_accounts
from core import password_reset
from core.bank import Bank
from core.clock import as_utc, utcnow
from core.kyc import documents
from core.models import Account, Job, Reminder, StandingOrder, Transfer
from core.transfers import post_transfer_jobs
from tests.integration.test_password_reset import emailed_code
from tests.support import PASSWORD, accept_transfer, make_user, open_account

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def token(page) -> str:  # type: ignore[no-untyped-def]
    return CSRF.search(page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]


def sign_in(client, user, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    form = client.get("/signin")
    return client.post("/signin", data={"csrf_token": token(form), "username": user.username, "password": password})


def signed_in(app, user):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert sign_in(client, user).status_code == 303
    return client


def transfer_form(client, source: str, destination_number: str, amount: str, **extra: str) -> dict[str, str]:
    form = client.get("/transfers/new").get_data(as_text=True)
    return {"csrf_token": CSRF.search(form).group(1), "idempotency_key": KEY.search(form).group(1),  # type: ignore
            "source_account_id": source, "destination_account_number": destination_number, "amount": amount, **extra}


def count(bank: Bank, model) -> int:  # type: ignore[no-untyped-def]
    with bank.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def number_of(bank: Bank, account_id: str) -> str:
    with bank.db.transaction() as s:
        return str(s.get(Account, account_id).number)  # type: ignore[union-attr]


class Markup(HTMLParser):
    """What a Content-Security-Policy without 'unsafe-inline' would block: inline script, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.unlabelled: list[str] = []
        self.labels: set[str] = set()
        self.controls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and not named.get("src"):
            self.inline.append("<script> without src")
        self.inline += [f"{tag} {name}=" for name, _ in attrs if name == "style" or name.startswith("on")]
        if tag == "label" and named.get("for"):
            self.labels.add(str(named["for"]))
        if tag in ("input", "select", "textarea") and named.get("type") not in ("hidden", "submit"):
            self.controls.append(str(named.get("id")))


def test_pages_carry_the_policy_and_every_control_has_a_label(app, bank) -> None:
    customer = make_user(bank, full_name="Ada Lovelace")
    open_account(bank, customer, balance_minor=1000)
    client = signed_in(app, customer)
    for path in ("/", "/transfers/new", "/kyc", "/reminders", "/standing-orders", "/profile", "/notifications"):
        page = client.get(path)
        assert page.status_code == 200, path
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "unsafe" not in policy and "frame-ancestors 'none'" in policy
        assert page.headers["X-Frame-Options"] == "DENY"
        markup = Markup()
        markup.feed(page.get_data(as_text=True))
        assert markup.inline == [], path
        assert [c for c in markup.controls if c not in markup.labels] == [], path


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(app, bank) -> None:
    user = make_user(bank)
    plain = sign_in(app.test_client(), user).headers["Set-Cookie"]
    assert "bankq_console=" in plain and "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    secure = app.test_client()
    form = secure.get("/signin", base_url="https://bankq.test")
    answer = secure.post("/signin", base_url="https://bankq.test", headers={"Referer": "https://bankq.test/signin"},
                         data={"csrf_token": token(form), "username": user.username, "password": PASSWORD})
    assert answer.status_code == 303 and "Secure" in answer.headers["Set-Cookie"]


def test_signed_out_visitors_are_sent_to_sign_in_and_back(app) -> None:
    answer = app.test_client().get("/transfers/new")
    assert answer.status_code == 303 and answer.headers["Location"] == "/signin?next=/transfers/new"
    # Only a path on this site is followed after signing in.
    page = app.test_client().get("/signin?next=//evil.example/")
    assert "evil.example" not in page.get_data(as_text=True)


def test_signing_out_revokes_the_cookie_everywhere(app, bank) -> None:
    client = signed_in(app, make_user(bank))
    assert client.get("/").status_code == 200
    cookie = client.get_cookie("bankq_console").value  # type: ignore[union-attr]
    assert client.post("/signout", data={"csrf_token": token(client.get("/"))}).status_code == 303
    thief = app.test_client()
    thief.set_cookie("bankq_console", cookie)
    assert thief.get("/").status_code == 303


def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(app, bank) -> None:
    client = signed_in(app, make_user(bank))
    before = count(bank, Account)
    refused = client.post("/accounts", data={"currency": "EUR", "type": "checking"})
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    assert "not sent from a page of this site" in refused.get_data(as_text=True)
    forged = client.post("/accounts", data={"csrf_token": "forged", "currency": "EUR", "type": "checking"})
    assert forged.status_code == 400 and count(bank, Account) == before
    # The JSON API needs no CSRF token: it takes bearer tokens, never cookies.
    assert app.test_client().post("/api/v1/auth/login", json={"username": "x", "password": "y"}).status_code == 401


def test_staff_pages_follow_the_api_roles(app, bank) -> None:
    customer = signed_in(app, make_user(bank))
    teller = signed_in(app, make_user(bank, role="teller"))
    admin = signed_in(app, make_user(bank, role="admin"))
    for path in ("/staff/kyc", "/staff/customers", "/staff/movements/new", "/staff/queues", "/staff/ledger"):
        page = customer.get(path)
        assert page.status_code == 403 and "Not allowed" in page.get_data(as_text=True), path
    for path in ("/staff/queues", "/staff/audit", "/staff/ledger"):
        assert teller.get(path).status_code == 403, path
        assert admin.get(path).status_code == 200, path
    assert teller.get("/staff/kyc").status_code == 200
    assert teller.get("/staff/customers?q=a%00b").status_code == 422  # bad input is a 4xx, as in the API
    assert teller.get("/staff/customers?q=" + "x" * 201).status_code == 422
    assert teller.get("/staff/movements/new?account=a%00b").status_code == 404
    assert teller.get("/staff/audit?action=bogus").status_code == 403  # admin only, before the input is looked at
    assert admin.get("/staff/audit?action=bogus").status_code == 422
    assert teller.get("/transfers/new").status_code == 403  # staff move money through deposits, not transfers
    assert "The ledger balances" in admin.get("/staff/ledger?run=1").get_data(as_text=True)


def test_sign_in_locks_out_after_five_failures_like_the_api(app, bank) -> None:
    user = make_user(bank)
    client = app.test_client()
    for _ in range(5):
        assert sign_in(client, user, "wrong-password-123").status_code == 401
    locked = sign_in(client, user)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "Too many failed logins" in locked.get_data(as_text=True)


def test_sign_in_has_the_login_rate_limit(app, bank) -> None:
    app.config["BANKQ_RATE_LIMIT_LOGIN"] = "2 per minute"
    client = app.test_client()
    user = make_user(bank)
    assert sign_in(client, user, "wrong-password-123").status_code == 401
    assert client.get("/signin").status_code == 200  # looking at the form spends nothing
    assert sign_in(client, user, "wrong-password-123").status_code == 401
    limited = sign_in(client, user)
    assert limited.status_code == 429 and limited.headers["Retry-After"] and limited.mimetype == "text/html"


def test_sign_up_checks_like_the_api_and_signs_in(app, bank) -> None:
    client = app.test_client()
    form = {"csrf_token": token(client.get("/signup")), "username": "grace", "email": "grace@example.com",
            "full_name": "Grace Hopper", "time_zone": "Europe/Berlin"}
    weak = client.post("/signup", data={**form, "password": "password"})
    assert weak.status_code == 422 and "grace" not in [u for u in (weak.get_data(as_text=True),) if "Hello" in u]
    assert client.post("/signup", data={**form, "password": "compass-meadow-2093", "time_zone": "Mars/Olympus"}
                       ).status_code == 422
    created = client.post("/signup", data={**form, "password": "compass-meadow-2093"})
    assert created.status_code == 303 and "Hello, Grace Hopper" in client.get("/").get_data(as_text=True)


def test_bad_transfer_input_is_a_clear_4xx_and_writes_nothing(app, bank) -> None:
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, balance_minor=10_000), open_account(bank, bob)
    client = signed_in(app, alice)
    number = number_of(bank, destination)
    before = count(bank, Transfer), count(bank, Job)
    for amount, message in (("12.345", "at most 2 decimal places"), ("-5", "positive decimal"),
                            ("1e3", "positive decimal"), ("0", "greater than zero")):
        answer = client.post("/transfers", data=transfer_form(client, source, number, amount))
        assert answer.status_code == 422 and message in answer.get_data(as_text=True), amount
    late = client.post("/transfers", data=transfer_form(client, source, number, "1.00", execute_at="soon"))
    assert late.status_code == 422 and "A date and time" in late.get_data(as_text=True)
    nowhere = client.post("/transfers", data=transfer_form(client, source, "000", "1.00"))
    assert nowhere.status_code == 404
    keyless = transfer_form(client, source, number, "1.00")
    del keyless["idempotency_key"]
    assert client.post("/transfers", data=keyless).status_code == 400
    theirs = client.post("/transfers", data=transfer_form(client, destination, number, "1.00"))
    assert theirs.status_code == 404  # bob's account is not alice's to send from
    assert (count(bank, Transfer), count(bank, Job)) == before


def test_the_same_transfer_form_sent_twice_is_accepted_once(app, bank) -> None:
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, balance_minor=10_000), open_account(bank, bob)
    client = signed_in(app, alice)
    form = transfer_form(client, source, number_of(bank, destination), "12.50", description="Lunch")
    first, second = client.post("/transfers", data=form), client.post("/transfers", data=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Transfer).where(Transfer.kind == "transfer")) == 1
    # A new render is a new key: a second, deliberate transfer.
    again = client.post("/transfers", data=transfer_form(client, source, number_of(bank, destination), "12.50"))
    assert again.headers["Location"] != first.headers["Location"]


def test_statements_are_paginated_newest_first_and_times_in_the_users_zone(app, bank) -> None:
    alice = make_user(bank, time_zone="Asia/Tokyo")
    source = open_account(bank, alice, balance_minor=100)
    for _ in range(27):
        accepted = accept_transfer(bank, alice, source, open_account(bank, make_user(bank)), "0.01")
        post_transfer_jobs(bank.db, accepted.body["id"], batch_size=1)
    client = signed_in(app, alice)
    first = client.get(f"/accounts/{source}").get_data(as_text=True)
    assert first.count("<tr>") == 1 + 25 and "JST" in first and "−€0.01" in first and "€0.73" in first
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    rest = client.get(older).get_data(as_text=True)
    assert rest.count("<tr>") == 1 + 3 and "€1.00" in rest and 'rel="next"' not in rest and ">Newest<" in rest
    assert client.get(f"/accounts/{source}?cursor=garbage").status_code == 422


def test_reminders_and_standing_orders_are_created_listed_and_cancelled(app, bank) -> None:
    alice, bob = make_user(bank, time_zone="Europe/Berlin"), make_user(bank)
    source, destination = open_account(bank, alice, balance_minor=10_000), open_account(bank, bob)
    client = signed_in(app, alice)
    csrf = token(client.get("/reminders"))
    day = (utcnow() + timedelta(days=40)).date()
    made = client.post("/reminders", data={"csrf_token": csrf, "message": "Pay the plumber",
                                           "remind_at": f"{day}T09:30", "channel": "in_app", "repeat": "none"})
    assert made.status_code == 303, made.get_data(as_text=True)
    berlin = datetime.combine(day, time(9, 30), ZoneInfo("Europe/Berlin"))
    with bank.db.transaction() as s:
        reminder = s.scalar(select(Reminder))
        assert as_utc(reminder.remind_at) == berlin.astimezone(UTC)  # the wall-clock time in the person's zone
    listed = client.get("/reminders").get_data(as_text=True)
    assert f"Pay the plumber: {day} 09:30 {berlin.tzname()}" in listed
    assert client.post("/reminders", data={"csrf_token": csrf, "message": "x", "remind_at": "2001-01-01T00:00",
                                           "channel": "in_app", "repeat": "none"}).status_code == 422
    client.post(f"/reminders/{reminder.id}/cancel", data={"csrf_token": csrf})
    assert "<strong>cancelled</strong>" in client.get("/reminders").get_data(as_text=True)

    page = client.get("/standing-orders").get_data(as_text=True)
    form = {"csrf_token": CSRF.search(page).group(1), "idempotency_key": KEY.search(page).group(1),  # type: ignore
            "source_account_id": source, "destination_account_id": destination, "amount": "50.00",
            "frequency": "monthly", "start_date": str(day), "description": "Pocket money"}
    assert client.post("/standing-orders", data=form).status_code == 303
    assert client.post("/standing-orders", data=form).status_code == 303  # the same form again: one order
    assert count(bank, StandingOrder) == 1
    assert "€50.00 monthly (Pocket money)" in client.get("/standing-orders").get_data(as_text=True)
    with bank.db.transaction() as s:
        order_id = s.scalar(select(StandingOrder.id))
    client.post(f"/standing-orders/{order_id}/cancel", data={"csrf_token": csrf})
    assert "<strong>cancelled</strong>" in client.get("/standing-orders").get_data(as_text=True)


def test_profile_changes_the_time_zone_and_refuses_unknown_ones(app, bank) -> None:
    alice = make_user(bank, full_name="Alice Martin")
    client = signed_in(app, alice)
    csrf = token(client.get("/profile"))
    bad = client.post("/profile", data={"csrf_token": csrf, "full_name": "Alice Martin", "time_zone": "Mars/Base"})
    assert bad.status_code == 422 and "IANA time zone" in bad.get_data(as_text=True)
    good = client.post("/profile", data={"csrf_token": csrf, "full_name": "Alice M. Martin", "phone": "",
                                         "time_zone": "America/New_York"})
    assert good.status_code == 303
    page = client.get("/profile").get_data(as_text=True)
    assert 'value="America/New_York"' in page and 'value="Alice M. Martin"' in page and "Saved." not in page


def test_password_reset_through_the_console(app, bank, monkeypatch) -> None:
    monkeypatch.setattr(password_reset, "MIN_SECONDS", 0.02)
    alice = make_user(bank)
    client = app.test_client()
    csrf = token(client.get("/password-reset"))
    asked = client.post("/password-reset", data={"csrf_token": csrf, "email": alice.email})
    nobody = client.post("/password-reset", data={"csrf_token": csrf, "email": "nobody@example.com"})
    assert asked.status_code == nobody.status_code == 202  # the same answer: nobody learns who has an account
    wrong = client.post("/password-reset/confirm", data={"csrf_token": csrf, "email": alice.email, "code": "000000",
                                                         "new_password": "velvet-compass-2093"})
    assert wrong.status_code == 422
    done = client.post("/password-reset/confirm", data={"csrf_token": csrf, "email": alice.email,
                                                        "code": emailed_code(bank, alice),
                                                        "new_password": "velvet-compass-2093"})
    assert done.status_code == 200 and "Your password has been changed" in done.get_data(as_text=True)
    assert sign_in(app.test_client(), alice, "velvet-compass-2093").status_code == 303


def test_error_pages_never_show_a_stack_trace(app, bank, monkeypatch) -> None:
    client = signed_in(app, make_user(bank))
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert app.test_client().get("/api/v1/no/such").mimetype == "application/problem+json"
    assert client.get("/signout").status_code == 405
    assert client.get("/jobs/not-a-job").status_code == 404

    def broken(*_a, **_k):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    monkeypatch.setattr(core_accounts, "list_accounts", broken)
    failed = client.get("/")
    assert failed.status_code == 500 and "secret internals" not in failed.get_data(as_text=True)
    assert "Traceback" not in failed.get_data(as_text=True) and "Something went wrong" in failed.get_data(as_text=True)

    def down(*_a, **_k):  # type: ignore[no-untyped-def]
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(core_accounts, "list_accounts", down)
    unavailable = client.get("/")
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "5"
    assert "connection refused" not in unavailable.get_data(as_text=True)


def test_a_job_page_streams_rendered_status_then_closes_and_polls_with_286(app, bank) -> None:
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, balance_minor=1000), open_account(bank, bob)
    accepted = accept_transfer(bank, alice, source, destination, "9.00")
    job_id = accepted.body["id"]
    client = signed_in(app, alice)
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert f'sse-connect="/jobs/{job_id}/events"' in page and 'sse-close="done"' in page
    polled = client.get(f"/jobs/{job_id}/status")
    assert polled.status_code == 200 and polled.headers["Retry-After"] == "1"
    post_transfer_jobs(bank.db, job_id, batch_size=1)

    stream = client.get(f"/jobs/{job_id}/events")
    assert stream.mimetype == "text/event-stream"
    body = stream.get_data(as_text=True)  # the job is terminal: the stream replays and ends
    frames = [f for f in body.split("\n\n") if f]
    assert frames[0].startswith("retry: ") and frames[1] == "event: ready\ndata: ready"
    assert frames[-1] == "event: done\ndata: done"
    last = frames[-2].splitlines()
    assert last[0].startswith("id: ") and last[1] == "event: job"
    assert all(line.startswith("data: ") for line in last[2:]) and 'data-status="succeeded"' in frames[-2]
    assert 'data-via="stream"' in frames[-2] and "€9.00" in frames[-2]
    finished = client.get(f"/jobs/{job_id}/status")
    assert finished.status_code == 286 and 'data-terminal="true"' in finished.get_data(as_text=True)
    assert "sse-connect" not in client.get(f"/jobs/{job_id}").get_data(as_text=True)
    # Someone else's job does not exist for them, nor does its stream.
    other = signed_in(app, bob)
    assert other.get(f"/jobs/{job_id}").status_code == 404 and other.get(f"/jobs/{job_id}/events").status_code == 404


def test_document_images_are_for_staff_only(app, bank) -> None:
    from tests.e2e.test_kyc_e2e import passport

    customer = make_user(bank, kyc="unverified")
    accepted = documents.submit_document(bank, customer, document_type="passport", data=passport(),
                                         idempotency_key="doc-1")
    with bank.db.transaction() as s:
        document_id = s.scalar(select(Job.resource_id).where(Job.id == accepted.body["id"]))
    teller = make_user(bank, role="teller")
    image = documents.document_image(bank, teller, document_id)
    assert image.content_type == "image/png" and image.path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(documents.NotFound):
        documents.document_image(bank, customer, document_id)  # not even the owner gets it back
    page = signed_in(app, teller).get(f"/staff/kyc/{document_id}/image")
    assert page.status_code == 200 and page.mimetype == "image/png" and page.headers["Cache-Control"] == "no-store"
    assert signed_in(app, customer).get(f"/staff/kyc/{document_id}/image").status_code == 403


def test_cors_is_off_by_default(client) -> None:
    preflight = client.options("/api/v1/transfers", headers={"Origin": "http://localhost:5173",
                                                             "Access-Control-Request-Method": "POST"})
    assert not [h for h in preflight.headers.keys() if h.lower().startswith("access-control-")]
    answer = client.get("/api/v1/auth/me", headers={"Origin": "http://localhost:5173"})
    assert not [h for h in answer.headers.keys() if h.lower().startswith("access-control-")]


@pytest.fixture
def cors_client(bank):  # type: ignore[no-untyped-def]
    from api import create_app

    other = Bank(replace(bank.settings, cors_origins=("http://localhost:5173", "http://[::1]:5173")), pool_size=2)
    app = create_app(bank=other)
    app.config["TESTING"] = True
    yield app.test_client()
    other.db.dispose()


def test_cors_answers_preflight_and_exposes_the_job_headers_to_allowed_origins(cors_client, bank) -> None:
    origin = "http://localhost:5173"
    preflight = cors_client.options("/api/v1/transfers", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= {h.strip() for h in allowed.split(",")}
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    user = make_user(bank)
    login = cors_client.post("/api/v1/auth/login", json={"username": user.username, "password": PASSWORD},
                             headers={"Origin": origin})
    exposed = {h.strip().lower() for h in login.headers["Access-Control-Expose-Headers"].split(",")}
    assert login.headers["Access-Control-Allow-Origin"] == origin
    assert {"location", "retry-after", "idempotent-replayed"} <= exposed
    problem = cors_client.get("/api/v1/auth/me", headers={"Origin": origin})  # errors are readable too
    assert problem.status_code == 401 and problem.headers["Access-Control-Allow-Origin"] == origin
    assert cors_client.get("/api/v1/auth/me", headers={"Origin": "http://[::1]:5173"}).headers[
        "Access-Control-Allow-Origin"] == "http://[::1]:5173"
    for stranger in ("http://localhost:5174", "https://localhost:5173", "http://localhost:5173.evil.example"):
        answer = cors_client.get("/api/v1/auth/me", headers={"Origin": stranger})
        assert "Access-Control-Allow-Origin" not in answer.headers, stranger
    assert "Access-Control-Allow-Origin" not in cors_client.get("/signin", headers={"Origin": origin}).headers


def test_swagger_ui_is_served_locally(client) -> None:
    page = client.get("/api/v1/docs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "cdn" not in html and "/api/v1/docs/assets/swagger-ui-bundle.js" in html
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self' 'sha256-" in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
    for name in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        asset = client.get(f"/api/v1/docs/assets/{name}")
        assert asset.status_code == 200 and len(asset.get_data()) > 10_000, name
    assert client.get("/api/v1/docs/assets/index.html").status_code == 404
    assert client.get("/api/v1/docs/assets/..%2Fswagger_ui_bundle%2F__init__.py").status_code == 404


HOSTILE = {"nul": "a\x00b", "huge": "x" * 5000, "blank": "   ", "unicode": "\u202e\ufeff𝔘"}
CUSTOMER_FORMS = {
    "/signup": ("username", "email", "password", "full_name", "date_of_birth", "phone", "time_zone"),
    "/password-reset": ("email",),
    "/password-reset/confirm": ("email", "code", "new_password"),
    "/accounts": ("currency", "type"),
    "/transfers": ("idempotency_key", "source_account_id", "destination_account_id", "destination_account_number",
                   "amount", "description", "execute_at"),
    "/kyc": ("idempotency_key", "document_type", "file"),
    "/reminders": ("message", "remind_at", "channel", "repeat"),
    "/standing-orders": ("idempotency_key", "source_account_id", "destination_account_id", "amount", "frequency",
                         "start_date", "end_date", "description"),
    "/profile": ("full_name", "phone", "time_zone"),
    "/transfers/{transfer}/confirm": ("code",),
    "/reminders/nope/cancel": (),
    "/standing-orders/nope/cancel": (),
    "/transfers/nope/cancel": (),
}
STAFF_FORMS = {
    "/staff/movements": ("idempotency_key", "kind", "account_id", "amount", "currency", "description"),
    "/staff/customers/{customer}/status": ("status",),
    "/staff/kyc/nope/review": ("decision", "reason"),
}


def rows(bank: Bank) -> dict[str, int]:
    from core.models import IdempotencyKey, KycDocument, User

    return {m.__name__: count(bank, m) for m in (Account, Transfer, Job, Reminder, StandingOrder, User,
                                                 IdempotencyKey, KycDocument)}


def test_hostile_form_input_is_a_clear_4xx_and_writes_nothing(app, bank) -> None:
    alice, teller = make_user(bank, full_name="Alice Martin"), make_user(bank, role="teller")
    source = open_account(bank, alice, balance_minor=500_000)
    held = accept_transfer(bank, alice, source, open_account(bank, make_user(bank)), "2000.00")
    transfer_id = held.body["links"]["resource"].rsplit("/", 1)[1]
    ids = {"transfer": transfer_id, "customer": alice.id}
    before = rows(bank)
    for who, forms in ((alice, CUSTOMER_FORMS), (teller, STAFF_FORMS)):
        client = signed_in(app, who)
        csrf = token(client.get("/"))
        for path, names in forms.items():
            for label, value in HOSTILE.items():
                answer = client.post(path.format(**ids), data={"csrf_token": csrf, **dict.fromkeys(names, value)})
                if (path, label) == ("/profile", "blank"):  # empty fields keep what the profile has: a valid save
                    assert answer.status_code == 303
                    continue
                assert 400 <= answer.status_code < 500, (path, label, answer.status_code)
                assert answer.mimetype == "text/html", (path, label, answer.get_data(as_text=True)[:300])
                assert "Traceback" not in answer.get_data(as_text=True)
    after = rows(bank)
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}
