"""A revoked token, and every token of a user who was suspended, stops working within a second on every API process,
though each checks revocations and the token's user against its own copies in memory (core.revocation.LocalRevocations,
core.local_users.LocalUsers) rather than asking Redis or PostgreSQL on every request."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from tests.e2e.stack import ADMIN, Client

pytestmark = pytest.mark.e2e


def _stopped_everywhere_within_a_second(client: Client, token: str, stop: Callable[[], None]) -> None:
    me = f"{client.base}/auth/me"
    headers = {"Authorization": f"Bearer {token}"}

    def fresh_connection_get() -> int:
        # A new connection each time, so requests spread over the processes.
        return requests.get(me, headers={**headers, "Connection": "close"}, timeout=10).status_code

    assert {fresh_connection_get() for _ in range(30)} == {200}  # every process has checked (and loaded) its copies
    stop()
    stopped_at = time.monotonic()
    late = []
    while (elapsed := time.monotonic() - stopped_at) < 2.0:
        status = fresh_connection_get()
        if elapsed >= 1.0:
            late.append(status)
    assert late and set(late) == {401}, f"{late.count(200)} of {len(late)} requests after 1 s still got in"


def test_a_token_revoked_on_one_process_stops_working_on_all_within_a_second(e2e_env, stack_factory):
    stack = stack_factory(e2e_env)
    client = Client(stack.start_api(workers=3))
    _, token = client.customer("rhea")
    _stopped_everywhere_within_a_second(
        client, token, lambda: assert_status(client.call("POST", "/auth/logout", token), 204))


def test_a_suspended_customers_tokens_stop_working_on_every_process_within_a_second(e2e_env, stack_factory):
    stack = stack_factory(e2e_env)
    client = Client(stack.start_api(workers=3))
    customer_id, token = client.customer("suri")
    admin = client.login(*ADMIN)
    _stopped_everywhere_within_a_second(client, token, lambda: assert_status(
        client.call("PATCH", f"/customers/{customer_id}/status", admin, json={"status": "suspended"}), 200))


def assert_status(answer: requests.Response, status: int) -> None:
    assert answer.status_code == status, answer.text
