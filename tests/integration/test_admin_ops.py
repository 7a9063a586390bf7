"""Admin views of the machine: queue depths from the database, the audit trail."""

from __future__ import annotations

from celery import Celery

from core.audit import ACTIONS
from core.transfers import TransferRequest, request_transfer
from tasks.publisher import WORKERS_STATUSES, workers_report
from tests.servers import free_port
from tests.support import auth_headers, make_user, open_account


def test_queues_show_waiting_jobs_per_queue(bank, client):
    admin, alice, bob = make_user(bank, role="admin"), make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 10_00), open_account(bank, bob, "EUR")
    for i in range(3):
        request_transfer(
            bank,
            alice,
            TransferRequest(
                source_account_id=source, destination_account_id=destination, amount="1.00", currency="EUR"
            ),
            idempotency_key=f"q{i}",
            body={},
        )
    answer = client.get("/api/v1/admin/queues", headers=auth_headers(client, admin))
    assert answer.status_code == 200
    queues = {q["name"]: q for q in answer.get_json()["queues"]}
    assert set(queues) >= {"transfers", "kyc", "notify", "default"}
    assert queues["transfers"]["depth"] == 3 and queues["kyc"]["depth"] == 0
    # No worker runs in these tests and the broker is this session's Redis: asked, and nobody answered.
    assert answer.get_json()["workers"] == []
    assert answer.get_json()["workers_status"] == "none_answered"
    assert "No worker answered" in answer.get_json()["workers_note"]
    assert client.get("/api/v1/admin/queues", headers=auth_headers(client, alice)).status_code == 403


def test_audit_trail_is_listed_newest_first_with_a_cursor(bank, client):
    admin, alice = make_user(bank, role="admin"), make_user(bank)
    headers = auth_headers(client, admin)
    for currency in ("EUR", "USD", "GBP"):
        client.post(
            "/api/v1/accounts", json={"currency": currency, "type": "checking", "owner_id": alice.id}, headers=headers
        )
    first = client.get("/api/v1/admin/audit?action=account.opened&limit=2", headers=headers).get_json()
    rest = client.get(
        f"/api/v1/admin/audit?action=account.opened&limit=2&cursor={first['next_cursor']}", headers=headers
    ).get_json()
    events = first["items"] + rest["items"]
    assert [e["details"]["currency"] for e in events] == ["GBP", "USD", "EUR"]
    assert all(e["actor_id"] == admin.id and e["target"].startswith("account:") for e in events)
    assert client.get("/api/v1/admin/audit", headers=auth_headers(client, alice)).status_code == 403


def test_metrics_show_queue_depth_per_queue_for_autoscalers(bank, client):
    """KEDA/HPA scale workers on bankq_queue_depth{queue=...} (README, "Autoscaling on queue depth")."""
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 10_00), open_account(bank, bob, "EUR")
    for i in range(2):
        request_transfer(
            bank,
            alice,
            TransferRequest(
                source_account_id=source, destination_account_id=destination, amount="1.00", currency="EUR"
            ),
            idempotency_key=f"m{i}",
            body={},
        )
    text = client.get("/metrics").get_data(as_text=True)
    assert 'bankq_queue_depth{queue="transfers"} 2.0' in text
    for queue in ("kyc", "notify", "default"):
        assert f'bankq_queue_depth{{queue="{queue}"}} 0.0' in text
    assert 'bankq_queue_oldest_age_seconds{queue="transfers"}' in text


def test_workers_are_unknown_on_the_embedded_broker(tmp_path):
    embedded = Celery("embedded", broker="filesystem://")
    embedded.conf.broker_transport_options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path)}
    report = workers_report(embedded)
    assert report["workers"] is None and report["workers_status"] == "no_remote_control"
    assert "embedded broker has no remote control" in report["workers_note"]


def test_workers_are_unknown_when_the_broker_is_down():
    down = Celery("down", broker=f"redis://127.0.0.1:{free_port()}/0")
    down.conf.broker_connection_timeout = 1
    report = workers_report(down)
    assert report["workers"] is None and report["workers_status"] == "broker_unavailable"


def test_the_openapi_document_explains_the_workers_field(client):
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["QueuesOut"]["properties"]
    assert schema["workers"]["nullable"] is True and "null" in schema["workers"]["description"]
    assert schema["workers_status"]["enum"] == list(WORKERS_STATUSES)
    assert "workers_note" in schema


def test_the_openapi_document_lists_every_audit_action(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    [param] = [p for p in doc["paths"]["/api/v1/admin/audit"]["get"]["parameters"] if p["name"] == "action"]
    field = doc["components"]["schemas"]["AuditEventOut"]["properties"]["action"]
    for listed in (param["schema"], field):
        assert [a for a in listed["enum"] if a is not None] == list(ACTIONS)  # None: the filter is optional
    for action in ACTIONS:
        assert f"`{action}`" in param["description"] and f"`{action}`" in field["description"]


def test_the_audit_filter_takes_listed_actions_only(bank, client):
    headers = auth_headers(client, make_user(bank, role="admin"))
    assert client.get("/api/v1/admin/audit?action=user.locked", headers=headers).status_code == 200
    unknown = client.get("/api/v1/admin/audit?action=account.renamed", headers=headers)
    assert unknown.status_code == 422 and unknown.mimetype == "application/problem+json"
    assert "action" in unknown.get_json()["errors"]
