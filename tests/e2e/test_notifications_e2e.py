"""Notifications with real processes: beat relays the outbox, a `notify` worker sends over SMTP (retrying a 451
after its back-off), and the API lists what was sent."""

from __future__ import annotations

import time

import pytest

from core.bank import Bank
from core.models import User
from core.notifications import queue_notification
from core.settings import Settings
from tests.e2e.stack import Client
from tests.integration.test_notifications import Mailbox
from tests.servers import free_port

pytestmark = pytest.mark.e2e


def test_worker_sends_retries_and_the_api_lists(e2e_env, stack_factory):
    mailbox = Mailbox(free_port())
    mailbox.replies = ["451 4.7.1 Greylisted, try again"]
    mailbox.start()
    try:
        stack = stack_factory({**e2e_env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(mailbox.port)})
        client = Client(stack.start_api())
        stack.start_worker("notify-worker", queues="notify,default", concurrency=1)
        stack.start_beat()
        user_id, token = client.customer("nora")

        bank = Bank(Settings.from_env(e2e_env))
        try:
            with bank.db.transaction() as s:
                user = s.get(User, user_id)
                assert user is not None
                nid = queue_notification(
                    s, user=user, channel="email", template="reminder", context={"message": "Rent is due."}
                ).id
        finally:
            bank.db.dispose()

        deadline = time.monotonic() + 45
        items: list[dict] = []
        while time.monotonic() < deadline:
            items = client.call("GET", "/notifications", token).json()["items"]
            if items and items[0]["status"] != "queued":
                break
            time.sleep(0.5)
        assert [(i["id"], i["status"]) for i in items] == [(nid, "sent")], stack.log("notify-worker")[-3000:]
        assert mailbox.data_commands == 2 and len(mailbox.accepted) == 1
        assert mailbox.accepted[0]["Message-ID"] == f"<{nid}@bankq>"
        assert "Rent is due." in mailbox.accepted[0].get_body(preferencelist=("plain",)).get_content()
    finally:
        mailbox.stop()
