"""A revoked token stops working within a second on every API process, though each checks revocations against its
own copy in memory (core.revocation.LocalRevocations) rather than asking Redis on every request."""

from __future__ import annotations

import time

import pytest
import requests

from tests.e2e.stack import Client

pytestmark = pytest.mark.e2e


def test_a_token_revoked_on_one_process_stops_working_on_all_within_a_second(e2e_env, stack_factory):
    stack = stack_factory(e2e_env)
    client = Client(stack.start_api(workers=3))
    _, token = client.customer("rhea")
    me = f"{client.base}/auth/me"
    headers = {"Authorization": f"Bearer {token}"}

    def fresh_connection_get() -> int:
        # A new connection each time, so requests spread over the processes.
        return requests.get(me, headers={**headers, "Connection": "close"}, timeout=10).status_code

    assert {fresh_connection_get() for _ in range(30)} == {200}  # every process has checked (and loaded) its copy
    assert client.call("POST", "/auth/logout", token).status_code == 204
    revoked_at = time.monotonic()
    late = []
    while (elapsed := time.monotonic() - revoked_at) < 2.0:
        status = fresh_connection_get()
        if elapsed >= 1.0:
            late.append(status)
    assert late and set(late) == {401}, f"{late.count(200)} of {len(late)} requests after 1 s still got in"
