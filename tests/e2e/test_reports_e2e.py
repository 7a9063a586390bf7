"""A statement through the real processes: requested over HTTP, rendered by a worker, downloaded by its owner."""

from __future__ import annotations

import csv
import io

import pytest

from core.clock import utcnow
from tests.e2e.stack import ADMIN, Client

pytestmark = pytest.mark.e2e


def test_a_csv_statement_is_rendered_by_a_worker_and_downloaded(e2e_env, stack_factory):
    stack = stack_factory(e2e_env)
    client = Client(stack.start_api())
    stack.start_worker()
    admin = client.login(*ADMIN)
    _, alice = client.customer("alice")
    _, mallory = client.customer("mallory")
    account = client.account(alice)
    client.deposit(admin, account, "12.34", "fund")
    today = utcnow().date().isoformat()
    asked = client.call("POST", f"/accounts/{account}/statements", alice, "stmt",
                        json={"from": today, "to": today, "format": "csv"})
    assert asked.status_code == 202, asked.text
    job = client.wait_job(alice, asked.json()["id"])
    assert job["status"] == "succeeded", job
    report_path = job["links"]["resource"].removeprefix("/api/v1")
    download = client.call("GET", f"{report_path}/download", alice)
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["amount"] for row in rows] == ["12.34"]
    assert client.call("GET", f"{report_path}/download", mallory).status_code == 404
