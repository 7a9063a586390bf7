"""Webhooks on real PostgreSQL, delivered over real HTTP to a receiver on 127.0.0.1. The dispatch tick and the
deliver task are run in-process through the core functions they call (fan_out, claim_due, send_delivery)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from standardwebhooks import Webhook as Verifier
from standardwebhooks import WebhookVerificationError

from core import webhooks
from core.clock import clock
from core.jobs import finish, new_job
from core.models import Notification, Webhook, WebhookCursor, WebhookDelivery, new_id
from core.transfers import post_transfer_jobs
from tests.receiver import Receiver
from tests.support import accept_transfer, auth_headers, make_user, open_account, run_concurrently


@pytest.fixture
def private_bank(bank):  # type: ignore[no-untyped-def]
    """The bank with BANKQ_WEBHOOK_ALLOW_PRIVATE=true, so the loopback receiver may be called."""
    allowed = copy.copy(bank)
    allowed.settings = dataclasses.replace(bank.settings, webhook_allow_private=True)
    return allowed


@pytest.fixture
def wclient(private_bank):  # type: ignore[no-untyped-def]
    from api import create_app

    app = create_app(bank=private_bank)
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    with Receiver() as r:
        yield r


def _create(client, headers, url, events=("job.succeeded",), **fields):  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/webhooks", json={"url": url, "events": list(events), **fields}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _transfer(bank, user, amount="1.00", *, balance=10_000):  # type: ignore[no-untyped-def]
    """A transfer of the user's, accepted and posted (or failed): its job id."""
    source = open_account(bank, user, "EUR", balance)
    destination = open_account(bank, make_user(bank))
    job_id = accept_transfer(bank, user, source, destination, amount).body["id"]
    post_transfer_jobs(bank.db, job_id, batch_size=1)
    return job_id


def _run(bank):  # type: ignore[no-untyped-def]
    """One dispatch tick and the deliver tasks it would queue, each handing over the next claims its attempt made."""
    webhooks.fan_out(bank)
    claims, outcomes = webhooks.claim_due(bank), []
    while claims:
        outcomes.append(webhooks.send_delivery(bank, claims[0].delivery_id, claims[0].token))
        claims = claims[1:] + outcomes[-1].claims
    return outcomes


def _attempts(client, headers, webhook_id):  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def _count(bank, model, *where):  # type: ignore[no-untyped-def]
    with bank.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_a_succeeded_transfer_arrives_signed_as_standard_webhooks_verifies(private_bank, wclient, receiver):
    user = make_user(private_bank)
    headers = auth_headers(wclient, user)
    created = _create(wclient, headers, receiver.url, ["job.succeeded", "job.failed"], description="books")
    assert created["status"] == "active" and created["secret"].startswith("whsec_")
    assert set(created) >= {"id", "url", "events", "description", "status", "secret", "created_at"}
    assert "secret" not in wclient.get(f"/api/v1/webhooks/{created['id']}", headers=headers).get_json()

    job_id = _transfer(private_bank, user)
    [outcome] = _run(private_bank)
    assert outcome.status == "succeeded"
    [request] = receiver.requests
    payload = Verifier(created["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "job.succeeded"
    assert payload["data"] == wclient.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
    assert datetime.fromisoformat(payload["timestamp"]).tzinfo is not None
    assert request.headers["webhook-id"].startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    with pytest.raises(WebhookVerificationError):
        Verifier(created["secret"]).verify(request.body + b" ", request.headers)  # the body is signed exactly

    [attempt] = _attempts(wclient, headers, created["id"])
    assert {k: attempt[k] for k in ("webhook_id", "type", "attempt", "status_code", "error")} == {
        "webhook_id": created["id"], "type": "job.succeeded", "attempt": 1, "status_code": 204, "error": None}
    assert set(attempt) == {"id", "event_id", "webhook_id", "type", "attempt", "status_code", "error",
                            "duration_ms", "at"}
    assert _run(private_bank) == [] and len(receiver.requests) == 1  # delivered once


def test_a_failed_transfer_is_job_failed_and_unsubscribed_types_are_not_sent(private_bank, wclient, receiver):
    user = make_user(private_bank)
    headers = auth_headers(wclient, user)
    hook = _create(wclient, headers, receiver.url, ["job.failed"])
    _transfer(private_bank, user, "1.00")  # succeeds: not subscribed
    _transfer(private_bank, user, "500.00", balance=100)  # insufficient funds
    _run(private_bank)
    [request] = receiver.requests
    payload = Verifier(hook["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "job.failed" and payload["data"]["error"]["code"] == "insufficient_funds"


def test_500_then_204_is_two_attempts_with_one_webhook_id(private_bank, wclient):
    clock.freeze(datetime.now(UTC))
    user = make_user(private_bank)
    headers = auth_headers(wclient, user)
    with Receiver(500, 204) as receiver:
        hook = _create(wclient, headers, receiver.url)
        _transfer(private_bank, user)
        assert [o.status for o in _run(private_bank)] == ["retrying"]
        assert _run(private_bank) == []  # the retry is due 5 s later, not before
        clock.advance(seconds=5)
        assert [o.status for o in _run(private_bank)] == ["succeeded"]
        first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    for request in (first, second):
        Verifier(hook["secret"]).verify(request.body, request.headers)
    newest, oldest = _attempts(wclient, headers, hook["id"])
    assert (oldest["attempt"], oldest["status_code"], newest["attempt"], newest["status_code"]) == (1, 500, 2, 204)
    assert oldest["event_id"] == newest["event_id"]


def test_the_retry_schedule_ends_after_eight_attempts(private_bank, wclient):
    clock.freeze(datetime.now(UTC))
    user = make_user(private_bank)
    headers = auth_headers(wclient, user)
    with Receiver(503) as receiver:
        hook = _create(wclient, headers, receiver.url)
        _transfer(private_bank, user)
        statuses = []
        for delay in webhooks.RETRY_DELAYS:
            clock.advance(seconds=delay)
            statuses += [o.status for o in _run(private_bank)]
        clock.advance(days=1)
        assert _run(private_bank) == []
    assert statuses == ["retrying"] * 7 + ["failed"]
    assert webhooks.RETRY_DELAYS == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert len(_attempts(wclient, headers, hook["id"])) == 8


def test_410_disables_the_endpoint(private_bank, wclient):
    user = make_user(private_bank)
    headers = auth_headers(wclient, user)
    with Receiver(410) as receiver:
        hook = _create(wclient, headers, receiver.url)
        _transfer(private_bank, user)
        assert [o.status for o in _run(private_bank)] == ["failed"]
        shown = wclient.get(f"/api/v1/webhooks/{hook['id']}", headers=headers).get_json()
        assert shown["status"] == "disabled" and "410" in shown["disabled_reason"]
        _transfer(private_bank, user)
        assert _run(private_bank) == [] and len(receiver.requests) == 1  # nothing more is sent
        assert _count(private_bank, Notification, Notification.user_id == user.id,
                      Notification.template == "webhook_disabled") == 1
        enabled = wclient.patch(f"/api/v1/webhooks/{hook['id']}", json={"status": "active"}, headers=headers)
        assert enabled.status_code == 200 and enabled.get_json()["status"] == "active"


def test_five_days_of_failures_disable_the_endpoint_and_tell_its_owner(private_bank, wclient):
    clock.freeze(datetime.now(UTC))
    user = make_user(private_bank)
    headers = auth_headers(wclient, user)
    with Receiver(500) as receiver:
        hook = _create(wclient, headers, receiver.url)
        _transfer(private_bank, user)
        _run(private_bank)
        with private_bank.db.transaction() as s:  # the run of failures began five days ago
            s.execute(update(Webhook).where(Webhook.id == hook["id"])
                      .values(failing_since=clock.now() - timedelta(days=5)))
        clock.advance(seconds=5)
        assert [o.status for o in _run(private_bank)] == ["failed"]
    shown = wclient.get(f"/api/v1/webhooks/{hook['id']}", headers=headers).get_json()
    assert shown["status"] == "disabled" and "5 days" in shown["disabled_reason"]
    assert _count(private_bank, Notification, Notification.user_id == user.id,
                  Notification.template == "webhook_disabled") == 1


def test_a_redirect_is_a_failure_and_is_not_followed(private_bank, wclient):
    user = make_user(private_bank)
    headers = auth_headers(wclient, user)
    with Receiver(204) as target, Receiver(302, headers={"Location": "/elsewhere"}) as redirecting:
        redirecting.extra_headers["Location"] = target.url
        hook = _create(wclient, headers, redirecting.url)
        _transfer(private_bank, user)
        assert [o.status for o in _run(private_bank)] == ["retrying"]
        assert len(redirecting.requests) == 1 and target.requests == []
    [attempt] = _attempts(wclient, headers, hook["id"])
    assert attempt["status_code"] == 302 and "redirect" in attempt["error"]


@pytest.mark.parametrize("url", [
    "ftp://example.com/hooks", "javascript:alert(1)", "http://", "https://user:pw@example.com/hooks",
    "http://127.0.0.1:8000/hooks", "http://10.1.2.3/hooks", "http://192.168.0.1/", "http://172.16.0.9/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/hooks", "http://[fd00:ec2::254]/",
    "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://100.64.0.1/", "http://224.0.0.1/",
    "http://2130706433/", "http://0x7f.1/", "http://localhost:9000/", "http://api.localhost/",
    "http://example.com/hooks#frag", "http://exa mple.com/",
])
def test_creation_refuses_other_schemes_and_internal_literal_addresses(bank, client, url):
    user = make_user(bank)
    response = client.post("/api/v1/webhooks", json={"url": url, "events": ["job.succeeded"]},
                           headers=auth_headers(client, user))
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["code"] in ("invalid_url", "validation_error")
    if url.startswith(("http://1", "http://[", "http://0", "http://2", "http://local")):
        assert response.get_json()["code"] == "invalid_url"
    assert _count(bank, Webhook) == 0


def test_creation_validates_events_and_sizes(bank, client):
    headers = auth_headers(client, make_user(bank))
    for body in ({"url": "https://example.com/h", "events": []},
                 {"url": "https://example.com/h", "events": ["job.exploded"]},
                 {"url": "https://example.com/h"},
                 {"url": "https://example.com/" + "a" * 2100, "events": ["job.failed"]},
                 {"url": "https://example.com/h", "events": ["job.failed"], "description": "d" * 501},
                 {"url": "https://example.com/h", "events": ["job.failed"], "secret": "whsec_mine"}):
        response = client.post("/api/v1/webhooks", json=body, headers=headers)
        assert response.status_code == 422, (body, response.get_json())
    ok = client.post("/api/v1/webhooks", json={"url": "https://example.com/h", "events": ["job.failed"] * 3},
                     headers=headers)
    assert ok.status_code == 201 and ok.get_json()["events"] == ["job.failed"]


def test_delivery_refuses_a_name_that_resolves_to_loopback(bank, private_bank, wclient, receiver):
    """Saved while private addresses were allowed; with the setting off the attempt fails after resolving, and
    the receiver is never called."""
    user = make_user(bank)
    headers = auth_headers(wclient, user)
    hook = _create(wclient, headers, receiver.url.replace("127.0.0.1", "localhost"))
    _transfer(bank, user)
    [outcome] = _run(bank)  # the bank with BANKQ_WEBHOOK_ALLOW_PRIVATE off
    assert outcome.status == "retrying" and receiver.requests == []
    assert "refused" in outcome.answer.error and "loopback" in outcome.answer.error
    [attempt] = _attempts(wclient, headers, hook["id"])
    assert attempt["status_code"] is None and "loopback" in attempt["error"]


def test_rotation_signs_with_both_secrets_for_24_hours(private_bank, wclient, receiver):
    user = make_user(private_bank)
    headers = auth_headers(wclient, user)
    hook = _create(wclient, headers, receiver.url)
    rotated = wclient.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=headers)
    assert rotated.status_code == 200
    new_secret = rotated.get_json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != hook["secret"]
    _transfer(private_bank, user)
    _run(private_bank)
    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (hook["secret"], new_secret):
        Verifier(secret).verify(request.body, request.headers)

    clock.freeze(datetime.now(UTC) + timedelta(hours=24, seconds=1))
    _transfer(private_bank, user)
    _run(private_bank)
    later = receiver.wait_for(2)[1]
    [signature] = later.headers["webhook-signature"].split(" ")
    signed = f"{later.headers['webhook-id']}.{later.headers['webhook-timestamp']}.".encode() + later.body
    key = base64.b64decode(new_secret.removeprefix("whsec_"))
    assert signature == "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_another_users_webhook_is_404_and_their_events_never_arrive(private_bank, wclient):
    alice, bob = make_user(private_bank), make_user(private_bank)
    alice_headers, bob_headers = auth_headers(wclient, alice), auth_headers(wclient, bob)
    with Receiver() as alices, Receiver() as bobs:
        hook = _create(wclient, alice_headers, alices.url, list(webhooks.EVENT_TYPES))
        _create(wclient, bob_headers, bobs.url, list(webhooks.EVENT_TYPES))
        base = f"/api/v1/webhooks/{hook['id']}"
        for method, path in (("get", base), ("patch", base), ("delete", base), ("post", f"{base}/rotate-secret"),
                             ("get", f"{base}/deliveries"), ("post", f"{base}/deliveries/1/redeliver")):
            kwargs = {"json": {"description": "mine"}} if method == "patch" else {}
            response = getattr(wclient, method)(path, headers=bob_headers, **kwargs)
            assert response.status_code == 404, (method, path, response.get_json())
            assert response.get_json()["code"] == "webhook_not_found"
        assert wclient.get("/api/v1/webhooks", headers=bob_headers).get_json()["items"][0]["id"] != hook["id"]

        bob_job = _transfer(private_bank, bob)
        alice_job = _transfer(private_bank, alice)
        _run(private_bank)
    assert [r.body for r in alices.requests] and [r.body for r in bobs.requests]
    assert all(alice_job.encode() in r.body and bob_job.encode() not in r.body for r in alices.requests)
    assert all(bob_job.encode() in r.body for r in bobs.requests)


def test_list_patch_delete(private_bank, wclient, receiver):
    user = make_user(private_bank)
    headers = auth_headers(wclient, user)
    ids = [_create(wclient, headers, receiver.url)["id"] for _ in range(3)]
    page = wclient.get("/api/v1/webhooks?limit=2", headers=headers).get_json()
    rest = wclient.get(f"/api/v1/webhooks?limit=2&cursor={page['next_cursor']}", headers=headers).get_json()
    assert [h["id"] for h in page["items"] + rest["items"]] == ids[::-1] and rest["next_cursor"] is None
    patched = wclient.patch(f"/api/v1/webhooks/{ids[0]}", json={"events": ["kyc.decided"], "description": None},
                            headers=headers)
    assert patched.status_code == 200 and patched.get_json()["events"] == ["kyc.decided"]
    bad = wclient.patch(f"/api/v1/webhooks/{ids[0]}", json={"url": "gopher://x"}, headers=headers)
    assert bad.status_code == 422 and bad.get_json()["code"] == "invalid_url"
    assert wclient.delete(f"/api/v1/webhooks/{ids[0]}", headers=headers).status_code == 204
    assert wclient.get(f"/api/v1/webhooks/{ids[0]}", headers=headers).status_code == 404
    assert len(wclient.get("/api/v1/webhooks", headers=headers).get_json()["items"]) == 2


def test_fan_out_running_concurrently_creates_each_delivery_once(private_bank, wclient, receiver):
    users = [make_user(private_bank) for _ in range(3)]
    for user in users:
        _create(wclient, auth_headers(wclient, user), receiver.url, list(webhooks.EVENT_TYPES))
        for _ in range(3):
            _transfer(private_bank, user)
    created = run_concurrently(lambda: webhooks.fan_out(private_bank), 4)
    assert sum(created) == 9 and _count(private_bank, WebhookDelivery) == 9
    # Even a fan-out that forgot where it was (the cursor rewound) cannot make a second delivery.
    with private_bank.db.transaction() as s:
        s.execute(update(WebhookCursor).values(last_event_id=0))
    assert webhooks.fan_out(private_bank) == 0 and _count(private_bank, WebhookDelivery) == 9


def test_an_event_whose_transaction_commits_late_is_not_skipped(private_bank, wclient, receiver):
    user = make_user(private_bank)
    _create(wclient, auth_headers(wclient, user), receiver.url)

    def job_in(s):  # type: ignore[no-untyped-def]
        job = new_job(s, kind="transfer", user_id=user.id, resource_type="transfer", resource_id=new_id())
        s.flush()
        finish(job, "succeeded", result={})
        s.flush()
        return job.id

    with private_bank.db.transaction() as early:
        early_job = job_in(early)  # takes the lower event ids, commits last
        with private_bank.db.transaction() as late:
            late_job = job_in(late)
        webhooks.fan_out(private_bank)
    webhooks.fan_out(private_bank)
    with private_bank.db.transaction() as s:
        bodies = list(s.scalars(select(WebhookDelivery.payload)))
    assert len(bodies) == 2 and any(early_job in b for b in bodies) and any(late_job in b for b in bodies)


def test_a_kyc_job_reaching_a_terminal_status_is_kyc_decided(private_bank, wclient, receiver):
    user = make_user(private_bank, kyc="pending")
    hook = _create(wclient, auth_headers(wclient, user), receiver.url, ["kyc.decided"])
    with private_bank.db.transaction() as s:
        job = new_job(s, kind="kyc", user_id=user.id, resource_type="kyc_document", resource_id=new_id())
        s.flush()
        finish(job, "succeeded", result={"document_id": job.resource_id, "status": "verified"})
    _run(private_bank)
    [request] = receiver.requests
    payload = Verifier(hook["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "kyc.decided" and payload["data"]["result"]["status"] == "verified"
    assert webhooks.event_types("kyc", "failed") == ["job.failed", "kyc.decided"]
    assert webhooks.event_types("transfer", "running") == []


def test_a_slow_endpoint_holds_only_its_own_deliveries(private_bank, wclient, receiver):
    slow_owner, other = make_user(private_bank), make_user(private_bank)
    _create(wclient, auth_headers(wclient, slow_owner), "http://127.0.0.1:9/never-answers")
    _create(wclient, auth_headers(wclient, other), receiver.url)
    for _ in range(4):
        _transfer(private_bank, slow_owner)
    _transfer(private_bank, other)
    webhooks.fan_out(private_bank)
    claims = webhooks.claim_due(private_bank)
    with private_bank.db.transaction() as s:
        by_hook = {hook: n for hook, n in s.execute(
            select(WebhookDelivery.webhook_id, func.count())
            .where(WebhookDelivery.status == "sending").group_by(WebhookDelivery.webhook_id))}
    assert sorted(by_hook.values()) == [1, webhooks.MAX_IN_FLIGHT] and len(claims) == 3
    assert webhooks.claim_due(private_bank) == []  # the slow one's cap is full; nothing else is due


def test_a_lost_message_is_claimed_again_when_its_lease_ends(private_bank, wclient, receiver):
    clock.freeze(datetime.now(UTC))
    user = make_user(private_bank)
    _create(wclient, auth_headers(wclient, user), receiver.url)
    _transfer(private_bank, user)
    webhooks.fan_out(private_bank)
    [lost] = webhooks.claim_due(private_bank)  # its message never reaches a worker
    assert webhooks.claim_due(private_bank) == []
    clock.advance(seconds=61)
    [again] = webhooks.claim_due(private_bank)
    assert again.delivery_id == lost.delivery_id and again.token != lost.token
    assert webhooks.send_delivery(private_bank, lost.delivery_id, lost.token).status == "stale"
    assert webhooks.send_delivery(private_bank, again.delivery_id, again.token).status == "succeeded"
    assert webhooks.send_delivery(private_bank, again.delivery_id, again.token).status == "stale"  # a duplicate
    assert len(receiver.requests) == 1


def test_redeliver_sends_the_same_message_again(private_bank, wclient, receiver):
    user = make_user(private_bank)
    headers = auth_headers(wclient, user)
    hook = _create(wclient, headers, receiver.url)
    _transfer(private_bank, user)
    _run(private_bank)
    [attempt] = _attempts(wclient, headers, hook["id"])
    base = f"/api/v1/webhooks/{hook['id']}/deliveries"
    response = wclient.post(f"{base}/{attempt['id']}/redeliver", headers=headers)
    assert response.status_code == 202 and response.get_json()["status"] == "pending"
    assert wclient.post(f"{base}/999999/redeliver", headers=headers).status_code == 404
    assert wclient.post(f"{base}/nope/redeliver", headers=headers).status_code == 404
    assert [o.status for o in _run(private_bank)] == ["succeeded"]
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body
    assert [a["attempt"] for a in _attempts(wclient, headers, hook["id"])] == [2, 1]


def test_transport_bounds_time(private_bank):
    from core.webhooks import transport

    with Receiver(204, delay=3) as slow:
        answer = transport.post(slow.url, {}, b"{}", allow_private=True, total_seconds=1)
    assert answer.status_code is None and "timed out" in answer.error and answer.duration_ms < 2500


def test_secrets_are_sealed_at_rest(private_bank, wclient, receiver):
    user = make_user(private_bank)
    hook = _create(wclient, auth_headers(wclient, user), receiver.url)
    with private_bank.db.transaction() as s:
        stored = s.get(Webhook, hook["id"]).secret
    assert hook["secret"] not in stored and hook["secret"].removeprefix("whsec_") not in stored


def test_the_dispatcher_sends_as_soon_as_the_job_commits(private_bank, wclient, receiver):
    """Woken through Redis by the job's commit, not by its 2 s fallback poll nor by beat."""
    from core.webhooks.dispatch import Dispatcher

    user = make_user(private_bank)
    _create(wclient, auth_headers(wclient, user), receiver.url)
    sent: list[str] = []

    def send(claim):  # type: ignore[no-untyped-def] # what the deliver task does, in this thread
        sent.append(webhooks.send_delivery(private_bank, claim.delivery_id, claim.token).status)

    dispatcher = Dispatcher(private_bank, send, poll_seconds=30)
    dispatcher.start()
    try:
        assert dispatcher.hub.listening.wait(10)
        deadline = time.monotonic() + 5
        while dispatcher.rounds < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        posted = time.monotonic()
        job_id = _transfer(private_bank, user)
        [request] = receiver.wait_for(1, timeout=5)
        assert time.monotonic() - posted < 2
        assert json.loads(request.body)["data"]["id"] == job_id
        deadline = time.monotonic() + 5
        while not sent and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sent == ["succeeded"]
    finally:
        dispatcher.stop()


def test_an_endpoint_with_room_again_gets_its_next_delivery_at_once(private_bank, wclient, receiver):
    user = make_user(private_bank)
    hook = _create(wclient, auth_headers(wclient, user), receiver.url)
    for _ in range(webhooks.MAX_IN_FLIGHT + 1):
        _transfer(private_bank, user)
    webhooks.fan_out(private_bank)
    first = webhooks.claim_due(private_bank)
    assert len(first) == webhooks.MAX_IN_FLIGHT  # the cap holds the third back
    outcome = webhooks.send_delivery(private_bank, first[0].delivery_id, first[0].token)
    assert outcome.status == "succeeded" and outcome.webhook_id == hook["id"]
    [following] = outcome.claims  # claimed by the transaction that recorded the attempt
    assert following.delivery_id not in {c.delivery_id for c in first}
    assert webhooks.claim_due(private_bank) == []  # the cap holds: first[1] and the one following are in flight
    assert webhooks.send_delivery(private_bank, following.delivery_id, following.token).status == "succeeded"
    assert len(receiver.wait_for(2)) == 2


def test_an_attempt_that_fails_still_claims_the_next_but_a_disabled_endpoint_claims_none(private_bank, wclient,
                                                                                           receiver):
    user = make_user(private_bank)
    headers = auth_headers(wclient, user)
    hook = _create(wclient, headers, receiver.url)
    for _ in range(webhooks.MAX_IN_FLIGHT + 2):
        _transfer(private_bank, user)
    webhooks.fan_out(private_bank)
    first, second = webhooks.claim_due(private_bank)
    receiver.statuses = [500, 204]
    failed = webhooks.send_delivery(private_bank, first.delivery_id, first.token)
    assert failed.status == "retrying" and len(failed.claims) == 1  # a failure frees its place too
    disabled = wclient.patch(f"/api/v1/webhooks/{hook['id']}", json={"status": "disabled"}, headers=headers)
    assert disabled.status_code == 200
    assert webhooks.send_delivery(private_bank, second.delivery_id, second.token).claims == []


def test_a_sender_that_fails_leaves_the_rest_to_their_leases(private_bank, wclient, receiver):
    from core.webhooks.dispatch import dispatch

    users = [make_user(private_bank) for _ in range(3)]
    for user in users:
        _create(wclient, auth_headers(wclient, user), receiver.url)
        _transfer(private_bank, user)
    tries: list[str] = []

    def broker_down(claim):  # type: ignore[no-untyped-def]
        tries.append(claim.delivery_id)
        raise ConnectionError("broker unavailable")

    assert dispatch(private_bank, broker_down) == 0 and len(tries) == 1  # stops at the first failure
    assert _count(private_bank, WebhookDelivery, WebhookDelivery.status == "sending") == 3
    clock.freeze(datetime.now(UTC) + timedelta(seconds=61))
    assert dispatch(private_bank, lambda c: webhooks.send_delivery(private_bank, c.delivery_id, c.token)) == 3
    assert len(receiver.wait_for(3)) == 3


def test_the_embedded_database_delivers_too(tmp_path, receiver):
    """The claim, the attempt and the next claim on SQLite (`make run`'s default), past the in-flight cap."""
    from core.accounts import ensure_cash_accounts
    from core.bank import Bank
    from core.settings import Settings
    from core.setup import migrate
    from core.webhooks.endpoints import NewWebhook, create_webhook

    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    migrate(url)
    bank = Bank(Settings.from_env({"DATABASE_URL": url, "BANKQ_DATA_DIR": str(tmp_path),
                                   "BANKQ_WEBHOOK_ALLOW_PRIVATE": "true",
                                   "BANKQ_SECRET_KEY": "sqlite-hooks-key-0123456789abcdef0123456789"}))
    try:
        ensure_cash_accounts(bank.db)
        user = make_user(bank)
        hook = create_webhook(bank, user, NewWebhook(receiver.url, ["job.succeeded"]))
        jobs = {_transfer(bank, user) for _ in range(webhooks.MAX_IN_FLIGHT + 2)}
        assert [o.status for o in _run(bank)] == ["succeeded"] * len(jobs)
        verifier = Verifier(hook["secret"])
        assert {verifier.verify(r.body, r.headers)["data"]["id"] for r in receiver.requests} == jobs
        assert _count(bank, WebhookDelivery, WebhookDelivery.status != "succeeded") == 0
    finally:
        bank.db.dispose()
