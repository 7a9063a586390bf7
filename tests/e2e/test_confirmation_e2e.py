"""A large transfer over HTTP with real processes: held, the code arrives by email, confirmed, posted."""

from __future__ import annotations

import email
import re
import time
from email import policy
from pathlib import Path

import pytest

from tests.e2e.stack import ADMIN, Client

pytestmark = pytest.mark.e2e


def read_code(mail_dir: Path, seen: set[Path], timeout: float = 60) -> str:
    """The code as the customer gets it: from the email the notify worker wrote (no SMTP host configured)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.eml")) if mail_dir.exists() else []:
            if path in seen:
                continue
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if "confirm" not in str(message["Subject"]).lower():
                continue
            seen.add(path)
            text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
            return re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
        time.sleep(0.3)
    raise TimeoutError("no confirmation email arrived")


def test_large_transfer_is_confirmed_by_emailed_code_then_posted(e2e_env, stack_factory):
    stack = stack_factory(e2e_env)
    client = Client(stack.start_api())
    stack.start_worker(queues="transfers,notify,default")
    stack.start_beat()
    mail_dir, seen = Path(e2e_env["BANKQ_DATA_DIR"]) / "mail", set()
    admin = client.login(*ADMIN)
    _, alice = client.customer("alice")
    _, bob = client.customer("bob")
    source, destination = client.account(alice), client.account(bob)
    fund = client.call(
        "POST", "/deposits", admin, "fund", json={"account_id": source, "amount": "5000.00", "currency": "EUR"}
    )
    assert client.wait_job(admin, fund.json()["id"])["status"] == "succeeded"
    body = {"source_account_id": source, "destination_account_id": destination, "amount": "1200.00", "currency": "EUR"}

    held = client.call("POST", "/transfers", alice, "big-1", json=body).json()
    assert held["status"] == "awaiting_confirmation"
    code = read_code(mail_dir, seen)
    confirm = client.call(
        "POST", f"/transfers/{held['links']['resource'].rsplit('/', 1)[1]}/confirm", alice, json={"code": code}
    )
    assert confirm.status_code == 202, confirm.text
    assert client.wait_job(alice, held["id"])["status"] == "succeeded"
    assert client.balance(bob, destination) == "1200.00"

    second = client.call("POST", "/transfers", alice, "big-2", json=body).json()
    read_code(mail_dir, seen)
    path = f"/transfers/{second['links']['resource'].rsplit('/', 1)[1]}/confirm"
    answers = [client.call("POST", path, alice, json={"code": "000000"}) for _ in range(5)]
    assert [a.json().get("attempts_remaining") for a in answers] == [4, 3, 2, 1, 0]
    failed = client.wait_job(alice, second["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "confirmation_failed"
    assert client.balance(alice, source) == "3800.00"
    assert client.call("GET", "/admin/ledger/check", admin).json()["ok"]
