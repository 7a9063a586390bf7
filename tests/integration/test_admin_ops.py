"""Admin views of the machine: queue depths from the database, the audit trail."""

from __future__ import annotations

from core.transfers import TransferRequest, request_transfer
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
    assert isinstance(answer.get_json()["workers"], list)
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
