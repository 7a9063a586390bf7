"""Property-based fuzzing of the whole HTTP API from its own OpenAPI document (schemathesis over WSGI).

Every documented operation is called with generated valid (positive) and invalid (negative) inputs, authenticated
as a KYC-verified customer who owns a funded account. No answer may be a 5xx, and every answer must match the
document: status-specific schema and media type (errors are application/problem+json with the Problem schema).
The staff-only operations are then fuzzed once more as an admin, so their bodies get past the 403 too.

Pure generation rarely produces a real account id, a supported currency or a decimal amount, so every case is also
generated in a "steered" variant: ids replaced by the customer's real accounts, `currency` set to EUR, `amount`
drawn from decimal-looking strings (valid and edge cases) and a well-formed Idempotency-Key. That is what carries
the generated data past "no such account" into the money rules and the database.

schemathesis' own pytest integration (`schemathesis.pytest.from_fixture`) reads `Node._nodeid`, which pytest 9.2
no longer has; so this test drives Hypothesis itself: one `@given` run per operation and generation mode, on the
function-scoped `app`/`bank` fixtures, with failures collected across all operations and reported together.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from api.security import issue_tokens
from tests.support import PASSWORD, auth_headers, make_user, open_account

MAX_EXAMPLES = 15
# No 5xx; and every answer (errors included: application/problem+json, the Problem schema) is what the document says.
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)
STAFF_ONLY = {
    "POST /api/v1/deposits", "POST /api/v1/withdrawals", "POST /api/v1/admin/users", "GET /api/v1/admin/ledger/check",
    "POST /api/v1/accounts/{account_id}/freeze", "POST /api/v1/accounts/{account_id}/unfreeze",
    "GET /api/v1/customers", "GET /api/v1/customers/{customer_id}", "POST /api/v1/customers",
    "PATCH /api/v1/customers/{customer_id}", "GET /api/v1/admin/queues", "GET /api/v1/admin/audit",
    "GET /api/v1/kyc/reviews",
}
# Event streams stay open until the token expires; tests/integration/test_event_streams.py covers their answers.
STREAMS = {"GET /api/v1/events", "GET /api/v1/jobs/{job_id}/events"}
AMOUNTS = st.one_of(
    st.from_regex(r"(0|[1-9][0-9]{0,19})(\.[0-9]{1,4})?", fullmatch=True),
    st.sampled_from(["0.01", "1000.00", "9999999999999999.99", "99999999999999999.99", "999999999999999999",
                     "-1.00", "1e3", "NaN", "1.00\n", " 1.00", "+1"]),
)
_KEY_NUMBERS = itertools.count()
# A fresh key per steered call (a repeated key with another body is a legitimate 422 idempotency_key_reused).
IDEMPOTENCY_KEYS = st.builds(lambda: f"fuzz-{next(_KEY_NUMBERS)}")


def steer(own: str, other: str) -> Callable[[tuple[Any, str, str]], Any]:
    def apply(drawn: tuple[Any, str, str]) -> Any:
        case, amount, key = drawn
        if case.path_parameters and "account_id" in case.path_parameters:
            case.path_parameters["account_id"] = own
        if isinstance(case.body, dict):
            for name, value in (("source_account_id", own), ("account_id", own), ("currency", "EUR"),
                                ("amount", amount)):
                if name in case.body:
                    case.body[name] = value
            if "source_account_id" in case.body:  # a transfer: exactly one destination, the payee's account
                case.body.pop("destination_account_number", None)
                case.body["destination_account_id"] = other
        if case.headers and "Idempotency-Key" in case.headers:
            case.headers["Idempotency-Key"] = key
        return case

    return apply


def fuzz(strategy: st.SearchStrategy[Any], label: str, headers: Callable[[], dict[str, str]],
         statuses: Counter[tuple[str, int]]) -> None:
    @SETTINGS
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(headers=headers())
        statuses[(label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_no_operation_answers_with_a_server_error(app, bank, client) -> None:  # type: ignore[no-untyped-def]
    customer, payee = make_user(bank, kyc="verified"), make_user(bank, kyc="verified")
    admin = make_user(bank, role="admin")
    own = open_account(bank, customer, "EUR", 500_000)
    other = open_account(bank, payee, "EUR")
    customer_headers = auth_headers(client, customer)
    admin_headers = auth_headers(client, admin)
    login = client.post("/api/v1/auth/login", json={"username": customer.username, "password": PASSWORD}).get_json()
    refresh_headers = {"Authorization": f"Bearer {login['refresh_token']}"}

    def headers_for(label: str, as_admin: bool) -> dict[str, str]:
        if label == "POST /api/v1/auth/logout":  # a session of its own, so logging out does not end the run's
            with app.test_request_context():
                return {"Authorization": f"Bearer {issue_tokens(customer)['access_token']}"}
        if label == "POST /api/v1/auth/refresh":
            return refresh_headers
        return admin_headers if as_admin else customer_headers

    # We put the token on every call; without `with-security-parameters: false` schemathesis would generate its own
    # (garbage) Authorization header and every call would be a 401.
    config = schemathesis.Config.from_dict({
        "generation": {"with-security-parameters": False, "deterministic": True, "database": "none"},
    })
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)
    loaded = list(api.get_all_operations())
    operations = [result.ok() for result in loaded if isinstance(result, Ok)]
    assert len(operations) == len(loaded), [result.err() for result in loaded if not isinstance(result, Ok)]
    assert STREAMS <= {op.label for op in operations}
    operations = [op for op in operations if op.label not in STREAMS]
    assert len(operations) >= 15, [op.label for op in operations]
    runs = [(op, False) for op in operations] + [(op, True) for op in operations if op.label in STAFF_ONLY]
    assert len(runs) == len(operations) + len(STAFF_ONLY), "a staff-only operation is missing from the schema"

    failures: list[str] = []
    no_negative: list[str] = []
    statuses: Counter[tuple[str, int]] = Counter()
    started = time.monotonic()
    for operation, as_admin in runs:
        who = "admin" if as_admin else "customer"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            generated = operation.as_strategy(generation_mode=mode)
            strategy = st.one_of(generated, st.tuples(generated, AMOUNTS, IDEMPOTENCY_KEYS).map(steer(own, other)))

            try:
                fuzz(strategy, operation.label, functools.partial(headers_for, operation.label, as_admin), statuses)
            except Unsatisfiable:
                # Nothing in this operation can be made invalid (e.g. only a free-form string id in the path).
                if mode is not GenerationMode.NEGATIVE:
                    raise
                no_negative.append(operation.label)
            except Exception as exc:  # collect, so one failing operation does not hide the others
                failures.append(f"{operation.label} as {who} ({mode.value}):\n{exc}")
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {sum(statuses.values())} calls in {elapsed:.0f}s; no negative inputs for "
          f"{sorted(set(no_negative))}\n" + "\n".join(f"  {label}: {status} x{n}"
                                                      for (label, status), n in sorted(statuses.items())))
    assert not failures, "\n\n".join(failures)
    assert sum(statuses.values()) >= len(runs) * 20, statuses
    # The token, the real ids and the steered values did their job: the fuzzer got past authentication and
    # "no such account" and had requests accepted, so the checks covered the deep paths, not just the 4xx ones.
    succeeded = {label for (label, status), _ in statuses.items() if status < 300}
    expected = {"GET /api/v1/auth/me", "GET /api/v1/accounts/{account_id}", "GET /api/v1/accounts/{account_id}/entries",
                "POST /api/v1/accounts", "POST /api/v1/auth/logout", "POST /api/v1/auth/refresh",
                "POST /api/v1/transfers", "POST /api/v1/deposits", "POST /api/v1/withdrawals", "GET /api/v1/jobs"}
    assert expected <= succeeded, sorted(expected - succeeded)
