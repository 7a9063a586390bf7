"""Browser tests: Debian's chromium, driven by playwright, against one real stack (gunicorn API and a Celery worker on
PostgreSQL and Redis) shared by every test of this folder. Each test gets a fresh browser context (cookies, storage)
and saves a screenshot under test-results/<test>/ when it fails.

The browser is never downloaded: playwright launches /usr/bin/chromium (installed by `make test`'s system set-up).
Set BANKQ_SCREENSHOTS to a folder (e.g. docs/console) to save the README's screenshots there."""

from __future__ import annotations

import email
import functools
import io
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.bank import Bank
from core.settings import Settings
from core.setup import prepare
from tests import servers, support
from tests.e2e.stack import ADMIN, E2E_SECRET_KEY, ROOT, Client, Stack

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags chromium phones home, which this closed network refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = ROOT / "test-results"
PASSWORD = "lantern-meadow-4821"
TELLER = ("console-teller", "quartz-harbour-5150")
WAIT_MS = 60_000  # the longest a page waits for a job (OCR on a loaded 2-core machine)
# axe-core (the copy axe-playwright-python ships) with the WCAG 2.1 A and AA rules.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
               "resultTypes": ["violations"]}


@dataclass
class Bankq:
    """The running stack, an API client for setting up what a test is not about, and where mail lands."""

    base: str
    client: Client
    admin: str
    teller: str
    mail_dir: Path
    database_url: str
    logs: Path

    def diagnosis(self, job_id: str) -> str:
        """What the API says of a job and the last lines each process logged, for a test that waited in vain."""
        job = self.client.call("GET", f"/jobs/{job_id}", self.admin)
        tails = [f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.logs.glob("*.log"))]
        return "\n".join([f"job {job_id}: {job.status_code} {job.text}", *tails])

    def url(self, path: str) -> str:
        return self.base + path

    def customer(self, full_name: str = "Alice Martin", born: str | None = None, funds: str | None = None
                 ) -> dict[str, Any]:
        """A customer registered over the API, with an EUR account, funded when asked."""
        username = f"c{uuid.uuid4().hex[:10]}"
        body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD,
                "full_name": full_name}
        if born:
            body["date_of_birth"] = born
        created = self.client.call("POST", "/auth/register", json=body)
        assert created.status_code == 201, created.text
        token = self.client.login(username, PASSWORD)
        account = self.client.call("POST", "/accounts", token, json={"currency": "EUR", "type": "checking"}).json()
        if funds:
            self.client.deposit(self.admin, account["id"], funds, f"fund-{username}")
        return {"username": username, "email": body["email"], "token": token, "account": account,
                "id": created.json()["id"]}

    @contextmanager
    def holding(self, account_id: str) -> Iterator[None]:
        """The account's row locked, as a long transaction would: the worker's posting waits until the block
        ends, so a test sees the job's page before the job finishes, every time."""
        with psycopg.connect(support.libpq(self.database_url)) as conn:
            conn.execute("SELECT id FROM accounts WHERE id = %s FOR NO KEY UPDATE", (account_id,))
            yield
            conn.rollback()

    def jobs_of(self, token: str, kind: str) -> list[dict[str, Any]]:
        return list(self.client.call("GET", f"/jobs?kind={kind}", token).json()["items"])

    def code_from_mail(self, to: str, template: str, timeout: float = 60) -> str:
        """The 6-digit code as the customer reads it, from the .eml file the notify worker wrote (no SMTP host)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in sorted(self.mail_dir.glob("*.eml")) if self.mail_dir.exists() else []:
                message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
                if message["X-Bankq-Template"] == template and to in str(message["To"]):
                    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
                    return re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
            time.sleep(0.1)
        raise TimeoutError(f"no {template} email to {to} in {self.mail_dir}")


@pytest.fixture(scope="session")
def bankq(pg_server: servers.Server, redis_server: servers.Server,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bankq]:
    url = support.create_database(pg_server.url, "bankq_browser")
    data_dir = tmp_path_factory.mktemp("browser-data")
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/5",
        "CELERY_BROKER_URL": "",
        "BANKQ_DATA_DIR": str(data_dir),
        "BANKQ_SECRET_KEY": E2E_SECRET_KEY,
        "BANKQ_REQUIRE_KYC": "false",
        "BANKQ_ADMIN_USERNAME": ADMIN[0],
        "BANKQ_ADMIN_PASSWORD": ADMIN[1],
        "BANKQ_REDRIVE_AFTER_SECONDS": "3",
        "BANKQ_OUTBOX_RELAY_SECONDS": "1",
        "BANKQ_STREAM_POLL_SECONDS": "0.5",
    }
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    bank = Bank(Settings.from_env(env))
    prepare(bank)
    bank.db.dispose()
    logs = tmp_path_factory.mktemp("browser-logs")
    stack = Stack(env, logs)
    try:
        stack.start_worker(queues="transfers,kyc,notify,default", concurrency=2, wait=False)
        client = Client(stack.start_api())
        stack.wait_ready()
        admin = client.login(*ADMIN)
        teller = client.call("POST", "/admin/users", admin, json={
            "username": TELLER[0], "email": "teller@bank.example", "password": TELLER[1],
            "full_name": "Tina Teller", "role": "teller"})
        assert teller.status_code == 201, teller.text
        yield Bankq(stack.base, client, admin, client.login(*TELLER), data_dir / "mail", url, logs)
    finally:
        stack.stop_all()
        support.drop_database(pg_server.url, url)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (.ci/system-deps test)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives every run a fresh, throwaway user-data-dir.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def output_dir(node: pytest.Item) -> Path:
    return OUTPUT / re.sub(r"[^A-Za-z0-9_.-]+", "-", node.nodeid.split("tests/", 1)[-1]).strip("-")


@pytest.fixture
def new_context(browser: Any, request: pytest.FixtureRequest, bankq: Bankq) -> Iterator[Any]:
    """Fresh browser profiles (one per person in the test); on failure each of their pages is saved as a
    screenshot under test-results/<test>/."""
    made: list[Any] = []

    def make(width: int = 1100, height: int = 800, **options: Any) -> Any:
        ctx = browser.new_context(base_url=bankq.base, viewport={"width": width, "height": height}, **options)
        ctx.set_default_timeout(15_000)
        made.append(ctx)
        return ctx

    yield make
    call = getattr(request.node, "report_call", None)
    failed = call is not None and call.failed
    for n, ctx in enumerate(made):
        if failed:
            folder = output_dir(request.node)
            folder.mkdir(parents=True, exist_ok=True)
            for i, opened in enumerate(ctx.pages):
                try:
                    opened.screenshot(path=str(folder / f"failure-{n}-{i}.png"), full_page=True)
                except Exception as exc:  # the page may be gone; say so next to the others
                    (folder / f"failure-{n}-{i}.txt").write_text(f"no screenshot: {exc}\n")
        ctx.close()


@pytest.fixture
def page(new_context: Any) -> Any:
    return new_context().new_page()


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    """Through the sign-in page, as a person does."""
    page.goto("/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/(\?.*)?$"))


def signed_in(ctx: Any, username: str, password: str = PASSWORD) -> Any:
    """The context signed in through the sign-in form's own POST (its CSRF token and all), without rendering the
    page: for tests about what comes after signing in."""
    form = ctx.request.get("/signin").text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    answer = ctx.request.post("/signin", form={"csrf_token": token, "username": username, "password": password},
                              max_redirects=0)
    assert answer.status == 303, answer.text()
    return ctx


@pytest.fixture(scope="session")
def teller_state(browser: Any, bankq: Bankq) -> dict[str, Any]:
    """The teller signs in once (through the page); tests open their contexts with this session."""
    ctx = browser.new_context(base_url=bankq.base)
    sign_in(ctx.new_page(), *TELLER)
    state = ctx.storage_state()
    ctx.close()
    return state  # type: ignore[no-any-return]


@functools.cache
def _axe() -> Any:
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


def accessible(page: Any, what: str) -> None:
    """No axe-core violation of the WCAG 2.1 A/AA rules on the page as it is now."""
    found = _axe().run(page, options=AXE_OPTIONS).response["violations"]
    assert found == [], (what, [(v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in found])


def passport_png(**fields: Any) -> bytes:
    from tests.documents import Person, render_td3

    out = io.BytesIO()
    render_td3(Person(**fields), seed=3).save(out, "PNG")
    return out.getvalue()


def keep_screenshot(page: Any, name: str) -> None:
    """For the README: saved (as a small palette PNG) only when BANKQ_SCREENSHOTS names a folder."""
    folder = os.environ.get("BANKQ_SCREENSHOTS")
    if not folder:
        return
    from PIL import Image

    target = (ROOT / folder) if not Path(folder).is_absolute() else Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    raw = Image.open(io.BytesIO(page.screenshot(full_page=False)))
    raw.convert("RGB").quantize(colors=64).save(target / f"{name}.png", optimize=True)
