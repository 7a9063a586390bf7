"""One-time codes over HTTP and in core, on real PostgreSQL and Redis: issue as a job, verify once, expiry,
superseding, 5 attempts then blocked, 5 codes per 15 minutes, bindings, brute force, and no code anywhere it
should not be (answers, logs, the database)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import otp
from core.clock import clock, utcnow
from core.errors import Gone, NotFound, RateLimited
from core.models import Job, Notification, OneTimeCode, User
from core.notifications import send_notification
from tests.support import auth_headers, make_user


def code_for(bank, otp_id: str) -> str:
    """The test reads the code where only the mail would carry it: the queued notification's context."""
    with bank.db.transaction() as s:
        code_row = s.get(OneTimeCode, otp_id)
        notes = list(
            s.scalars(
                select(Notification)
                .where(Notification.user_id == code_row.user_id)
                .order_by(Notification.created_at.desc())
            )
        )
    for note in notes:
        code = (note.context or {}).get("code")
        if code and hmac.compare_digest(code_row.code_hash, otp.code_hash(bank.settings, otp_id, code)):
            return str(code)
    raise AssertionError("no queued notification carries this code")


def request_code(client, headers, purpose="verify_email", channel="email", key=None):
    return client.post(
        "/api/v1/otp",
        json={"purpose": purpose, "channel": channel},
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


def issued(client, headers, **kw) -> str:
    answer = request_code(client, headers, **kw)
    assert answer.status_code == 202, answer.get_json()
    return answer.get_json()["result"]["otp_id"]


def verify(client, headers, otp_id, code):
    return client.post(f"/api/v1/otp/{otp_id}/verify", json={"code": code}, headers=headers)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_request_is_a_job_born_succeeded_and_replays(bank, client) -> None:
    user = make_user(bank)
    headers = auth_headers(client, user)
    answer = request_code(client, headers, key="otp-key-1")
    assert answer.status_code == 202
    job = answer.get_json()
    assert answer.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert job["kind"] == "otp" and job["status"] == "succeeded"
    assert set(job["result"]) == {"otp_id", "expires_at"} and job["result"]["expires_at"].endswith("Z")
    polled = client.get(answer.headers["Location"], headers=headers)
    assert polled.status_code == 200 and polled.get_json()["result"] == job["result"]

    replay = request_code(client, headers, key="otp-key-1")
    assert replay.status_code == 202 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json()["id"] == job["id"]
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(OneTimeCode)) == 1
        assert s.scalar(select(func.count()).select_from(Notification)) == 1
        assert s.get(Job, job["id"]).status == "succeeded"

    reused = client.post(
        "/api/v1/otp",
        json={"purpose": "login", "channel": "email"},
        headers={**headers, "Idempotency-Key": "otp-key-1"},
    )
    assert reused.status_code == 422 and reused.get_json()["code"] == "idempotency_key_reused"
    missing = client.post("/api/v1/otp", json={"purpose": "login", "channel": "email"}, headers=headers)
    assert missing.status_code == 400 and missing.get_json()["code"] == "idempotency_key_required"
    bad = request_code(client, headers, purpose="everything")
    assert bad.status_code == 422
    no_phone = request_code(client, headers, channel="sms")
    assert no_phone.status_code == 422 and no_phone.get_json()["code"] == "no_phone"
    assert request_code(client, {}).status_code == 401


def test_verify_once_then_gone(bank, client) -> None:
    user = make_user(bank)
    headers = auth_headers(client, user)
    otp_id = issued(client, headers)
    code = code_for(bank, otp_id)
    ok = verify(client, headers, otp_id, code)
    assert ok.status_code == 200 and ok.get_json() == {"verified": True}
    again = verify(client, headers, otp_id, code)
    assert again.status_code == 410 and again.get_json()["code"] == "expired"
    with bank.db.transaction() as s:
        row = s.get(OneTimeCode, otp_id)
        assert row.status == "used" and row.used_at is not None and row.attempts == 0


def test_expires_after_ten_minutes(bank, client) -> None:
    user = make_user(bank)
    headers = auth_headers(client, user)
    clock.freeze(utcnow())
    otp_id = issued(client, headers)
    code = code_for(bank, otp_id)
    clock.advance(minutes=9, seconds=59)
    late = issued(client, headers, purpose="login")  # another purpose: does not supersede the first
    clock.advance(seconds=1)
    expired = verify(client, headers, otp_id, code)
    assert expired.status_code == 410 and expired.get_json()["code"] == "expired"
    with bank.db.transaction() as s:
        assert s.get(OneTimeCode, otp_id).status == "expired"
    assert verify(client, headers, late, code_for(bank, late)).status_code == 200


def test_a_new_code_supersedes_the_old_one(bank, client) -> None:
    user = make_user(bank)
    headers = auth_headers(client, user)
    first = issued(client, headers)
    first_code = code_for(bank, first)
    other_purpose = issued(client, headers, purpose="verify_phone")
    second = issued(client, headers)
    old = verify(client, headers, first, first_code)
    assert old.status_code == 410 and old.get_json()["code"] == "expired"
    assert verify(client, headers, second, code_for(bank, second)).status_code == 200
    assert verify(client, headers, other_purpose, code_for(bank, other_purpose)).status_code == 200


def test_five_wrong_codes_block_even_the_right_one(bank, client) -> None:
    user = make_user(bank)
    headers = auth_headers(client, user)
    otp_id = issued(client, headers)
    code = code_for(bank, otp_id)
    for left in (4, 3, 2, 1, 0):
        answer = verify(client, headers, otp_id, wrong(code))
        assert answer.status_code == 422, answer.get_json()
        body = answer.get_json()
        assert body["code"] == "invalid_code" and body["attempts_remaining"] == left
        assert answer.mimetype == "application/problem+json"
    blocked = verify(client, headers, otp_id, code)
    assert blocked.status_code == 429 and blocked.get_json()["code"] == "too_many_attempts"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 600
    with bank.db.transaction() as s:
        row = s.get(OneTimeCode, otp_id)
        assert (row.status, row.attempts, row.used_at) == ("blocked", 5, None)


def test_sixth_code_within_fifteen_minutes_is_refused(bank, client) -> None:
    user = make_user(bank)
    headers = auth_headers(client, user)
    clock.freeze(utcnow())
    for i in range(5):
        issued(client, headers, purpose=otp.PURPOSES[i % 5])
        clock.advance(minutes=1)
    sixth = request_code(client, headers)
    assert sixth.status_code == 429 and sixth.get_json()["code"] == "too_many_codes"
    assert int(sixth.headers["Retry-After"]) == 15 * 60 - 5 * 60  # the first code leaves the window then
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(OneTimeCode)) == 5
        assert s.scalar(select(func.count()).select_from(Job)) == 5
    other = make_user(bank)
    assert request_code(client, auth_headers(client, other)).status_code == 202  # per user
    clock.advance(minutes=10, seconds=1)
    assert request_code(client, headers).status_code == 202


def test_someone_elses_code_is_not_found_and_untouched(bank, client) -> None:
    owner, intruder = make_user(bank), make_user(bank)
    otp_id = issued(client, auth_headers(client, owner))
    code = code_for(bank, otp_id)
    for guess in (code, wrong(code)):
        answer = verify(client, auth_headers(client, intruder), otp_id, guess)
        assert answer.status_code == 404 and answer.get_json()["code"] == "otp_not_found"
    assert verify(client, auth_headers(client, intruder), "no-such-id", code).status_code == 404
    with bank.db.transaction() as s:
        row = s.get(OneTimeCode, otp_id)
        assert (row.status, row.attempts) == ("active", 0)
    assert verify(client, auth_headers(client, owner), otp_id, code).status_code == 200


def issue_in_core(bank, user, **kw) -> tuple[str, str]:
    with bank.db.transaction() as s:
        fresh = s.get(User, user.id)
        code = otp.issue_code(s, bank.settings, fresh, **{"purpose": "transfer", "channel": "email", **kw})
    return code.otp_id, code_for(bank, code.otp_id)


def attempt(bank, user, otp_id, code, binding=None) -> Exception | None:
    """One verification the way callers must do it: the failure is raised after the commit."""
    failure = None
    with bank.db.transaction() as s:
        try:
            otp.verify_code(s, bank.settings, user, otp_id, code, binding=binding)
        except Exception as exc:
            failure = exc
    return failure


def test_binding_mismatch_fails_and_counts(bank) -> None:
    user = make_user(bank)
    otp_id, code = issue_in_core(
        bank,
        user,
        subject_id=str(uuid.uuid4()),
        binding="pay 1500.00 EUR to DE89370400440532013000",
        template="transfer_confirmation",
        context={"amount": "1500.00", "currency": "EUR", "payee": "DE89 3704 0044 0532 0130 00"},
    )
    mismatch = attempt(bank, user, otp_id, code, binding="pay 9500.00 EUR to DE89370400440532013000")
    assert isinstance(mismatch, otp.CodeRejected) and mismatch.extra == {"attempts_remaining": 4}
    assert isinstance(attempt(bank, user, otp_id, code), otp.CodeRejected)  # no binding is a mismatch too
    assert attempt(bank, user, otp_id, code, binding="pay 1500.00 EUR to DE89370400440532013000") is None
    with bank.db.transaction() as s:
        row = s.get(OneTimeCode, otp_id)
        assert (row.status, row.attempts) == ("used", 2)
        assert row.binding == hashlib.sha256(b"pay 1500.00 EUR to DE89370400440532013000").hexdigest()


def test_verify_for_subject_finds_the_active_code_per_subject(bank, client) -> None:
    user = make_user(bank)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    clock.freeze(utcnow())  # equal created_at: the active code must still be the one found
    a_old, a_old_code = issue_in_core(bank, user, subject_id=first)
    b, b_code = issue_in_core(bank, user, subject_id=second)
    a_new, a_new_code = issue_in_core(bank, user, subject_id=first)

    def for_subject(subject, code):
        failure = None
        with bank.db.transaction() as s:
            try:
                otp.verify_for_subject(s, bank.settings, user, purpose="transfer", subject_id=subject, code=code)
            except Exception as exc:
                failure = exc
        return failure

    assert isinstance(for_subject(first, a_old_code), otp.CodeRejected) or a_old_code == a_new_code
    assert for_subject(first, a_new_code) is None
    assert isinstance(for_subject(first, a_new_code), Gone)  # used
    assert for_subject(second, b_code) is None  # another subject's code was not superseded
    assert isinstance(for_subject(str(uuid.uuid4()), b_code), NotFound)
    # Codes tied to an operation are verified by that operation, not by the generic endpoint.
    headers = auth_headers(client, user)
    c, c_code = issue_in_core(bank, user, subject_id=str(uuid.uuid4()))
    assert verify(client, headers, c, c_code).status_code == 404
    with bank.db.transaction() as s:
        assert s.get(OneTimeCode, a_old).status == "superseded" and s.get(OneTimeCode, b).status == "used"


def test_a_thousand_guesses_cannot_succeed(bank) -> None:
    """Brute force: 1000 guesses, the right one among them; only five are ever evaluated."""
    user = make_user(bank)
    otp_id, code = issue_in_core(bank, user, purpose="login")
    guesses = [f"{n:06d}" for n in range(1000) if f"{n:06d}" != code][:999] + [code]
    outcomes = [attempt(bank, user, otp_id, guess) for guess in guesses]
    assert not any(o is None for o in outcomes)
    assert sum(isinstance(o, otp.CodeRejected) for o in outcomes) == 5
    assert all(isinstance(o, RateLimited) and o.code == "too_many_attempts" for o in outcomes[5:])
    with bank.db.transaction() as s:
        row = s.get(OneTimeCode, otp_id)
        assert (row.status, row.attempts, row.used_at) == ("blocked", 5, None)


def test_concurrent_guesses_are_evaluated_at_most_five_times(bank) -> None:
    user = make_user(bank)
    otp_id, code = issue_in_core(bank, user, purpose="login")
    wrong_codes = [f"{n:06d}" for n in range(400) if f"{n:06d}" != code]
    results: list[Exception | None] = []
    lock = threading.Lock()

    def guess(chunk: list[str]) -> None:
        for g in chunk:
            outcome = attempt(bank, user, otp_id, g)
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=guess, args=(wrong_codes[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, otp.CodeRejected) for r in results) == 5
    assert isinstance(attempt(bank, user, otp_id, code), RateLimited)
    with bank.db.transaction() as s:
        assert s.get(OneTimeCode, otp_id).attempts == 5


def test_concurrent_requests_issue_at_most_five_codes(bank) -> None:
    user = make_user(bank)
    outcomes: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            issue_in_core(bank, user, purpose="login")
            result = "issued"
        except RateLimited as exc:
            result = exc.code
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["issued"] * 5 + ["too_many_codes"] * 7
    with bank.db.transaction() as s:
        statuses = sorted(s.scalars(select(OneTimeCode.status).where(OneTimeCode.user_id == user.id)))
    assert statuses == ["active"] + ["superseded"] * 4


def test_codes_are_never_answered_logged_or_stored(bank, client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    user = make_user(bank)
    headers = auth_headers(client, user)
    answers = [request_code(client, headers)]
    otp_id = answers[0].get_json()["result"]["otp_id"]
    code = code_for(bank, otp_id)
    answers.append(client.get(answers[0].headers["Location"], headers=headers))
    answers.append(client.get("/api/v1/jobs", headers=headers))
    answers.append(client.get("/api/v1/notifications", headers=headers))
    answers.append(verify(client, headers, otp_id, wrong(code)))
    answers.append(verify(client, headers, otp_id, code))
    for answer in answers:
        assert answer.status_code < 500
        assert code not in answer.get_data(as_text=True)
    with bank.db.transaction() as s:
        row = s.get(OneTimeCode, otp_id)
        note = s.scalar(select(Notification).where(Notification.user_id == user.id))
        stored = [str(getattr(row, c.key)) for c in OneTimeCode.__table__.columns]
    assert not any(code in value for value in stored)
    pepper = hmac.new(bank.settings.secret_key.encode(), b"bankq one-time-code pepper v1", "sha256").digest()
    assert row.code_hash == hmac.new(pepper, f"{otp_id}:{code}".encode(), "sha256").hexdigest()
    assert send_notification(bank, note.id) == "sent"  # to an .eml file: no SMTP host in tests
    with bank.db.transaction() as s:
        assert "code" not in (s.get(Notification, note.id).context or {})
    for record in caplog.records:
        assert code not in record.getMessage() and code not in str(record.args or ""), record.getMessage()


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "", " 123456", "１２３４５６"])
def test_malformed_codes_are_refused_without_counting(bank, client, code) -> None:
    user = make_user(bank)
    headers = auth_headers(client, user)
    otp_id = issued(client, headers)
    answer = verify(client, headers, otp_id, code)
    assert answer.status_code == 422 and answer.get_json()["code"] == "validation_error"
    with bank.db.transaction() as s:
        assert s.get(OneTimeCode, otp_id).attempts == 0


def test_settings_pepper_is_used_when_set(bank) -> None:
    from dataclasses import replace

    peppered = replace(bank.settings, otp_pepper="a-separate-pepper")
    assert otp.code_hash(peppered, "x", "123456") == hmac.new(b"a-separate-pepper", b"x:123456", "sha256").hexdigest()
    assert otp.code_hash(peppered, "x", "123456") != otp.code_hash(bank.settings, "x", "123456")
    assert timedelta(minutes=10) == otp.CODE_TTL


def test_expired_codes_are_purged_after_a_day(bank):
    from core import otp as otp_core
    from core.clock import clock, utcnow
    from core.models import OneTimeCode
    from tests.support import make_user

    user = make_user(bank)
    clock.freeze(utcnow())
    with bank.db.transaction() as s:
        otp_core.issue_code(s, bank.settings, user, purpose="login", channel="email")
    assert otp_core.purge_old_codes(bank.db) == 0
    clock.advance(minutes=10, days=1, seconds=1)
    assert otp_core.purge_old_codes(bank.db) == 1
    with bank.db.transaction() as s:
        assert s.query(OneTimeCode).count() == 0
