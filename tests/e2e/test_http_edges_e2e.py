"""What a real gunicorn answers to requests Flask never sees, or sees only because the limits let it: every answer,
from either, is an RFC 9457 problem document. Raw sockets, so nothing on the client side tidies the request up."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from api import MAX_URL_BYTES
from api.gunicorn_conf import limit_request_line

PROBLEM = "application/problem+json"


def exchange(base: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


def get(path: str, *headers: str) -> bytes:
    return "\r\n".join([f"GET {path} HTTP/1.1", "Host: bankq.test", "Connection: close", *headers, "", ""]).encode()


def assert_problem(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> dict[str, Any]:
    got, headers, body = answer
    assert got == status, (got, headers, body[:300])
    assert headers["content-type"] == PROBLEM, (headers, body[:300])
    problem = json.loads(body)
    assert problem["status"] == status and problem["code"] == code, problem
    assert {"type", "title", "detail"} <= set(problem)
    return dict(problem)


@pytest.fixture
def api(e2e_env, stack_factory) -> str:
    return str(stack_factory(e2e_env).start_api())


def test_the_limits_leave_every_url_the_api_takes_to_flask() -> None:
    assert limit_request_line >= len("OPTIONS ") + MAX_URL_BYTES + len(" HTTP/1.1")


def test_answers_before_and_around_flask_are_problem_documents(api: str) -> None:
    six_kb = "q=" + "a" * 6 * 1024
    # 6 KB: gunicorn lets it through (its default limit used to answer an HTML 414); the app answers it.
    assert exchange(api, get(f"/health?{six_kb}"))[0] == 200
    assert_problem(exchange(api, get(f"/api/v1/accounts?{six_kb}")), 401, "token_missing")
    # Just over the API's own limit, within gunicorn's request line: Flask answers 414.
    over = "q=" + "a" * MAX_URL_BYTES
    flask_414 = assert_problem(exchange(api, get(f"/api/v1/accounts?{over}")), 414, "uri_too_long")
    assert str(MAX_URL_BYTES) in flask_414["detail"]
    # 20 KB: past gunicorn's request line limit; gunicorn answers, as a problem document.
    gunicorn_414 = assert_problem(exchange(api, get("/health?q=" + "a" * 20 * 1024)), 414, "uri_too_long")
    assert str(limit_request_line) in gunicorn_414["detail"]
    # A request line that is not HTTP at all.
    assert_problem(exchange(api, b"GARBAGE\r\n\r\n"), 400, "bad_request")
    assert_problem(exchange(api, b"GET /health HTTP/9.9\r\nHost: bankq.test\r\n\r\n"), 400, "bad_request")
    # A header longer than gunicorn takes, and too many headers.
    assert_problem(exchange(api, get("/health", "X-Padding: " + "b" * 10_000)), 431, "header_fields_too_large")
    many = [f"X-Header-{i}: {i}" for i in range(150)]
    assert_problem(exchange(api, get("/health", *many)), 431, "header_fields_too_large")
    # The server still serves after all that.
    assert exchange(api, get("/health"))[0] == 200
