"""Real bankq processes (gunicorn API, Celery workers, beat) for end-to-end tests, driven over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("e2e-admin", "slate-compass-2048")
E2E_SECRET_KEY = "e2e-secret-key-0123456789abcdef0123456789abcdef"


def embedded_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """`make run`'s default: SQLite and the filesystem broker under data_dir, no servers."""
    env = {
        "BANKQ_DATA_DIR": str(data_dir),
        "BANKQ_REQUIRE_KYC": "false",
        "BANKQ_ADMIN_USERNAME": ADMIN[0],
        "BANKQ_ADMIN_PASSWORD": ADMIN[1],
        "WORKER_CONCURRENCY": "1",
        "WEB_CONCURRENCY": "1",
        **extra,
    }
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        env[name] = ""
    return env


def real_env(database_url: str, redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """PostgreSQL + Redis (as broker too), quick re-drive and relay so recoveries show within a test's patience."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": "",
        "BANKQ_DATA_DIR": str(data_dir),
        "BANKQ_SECRET_KEY": E2E_SECRET_KEY,
        "BANKQ_REQUIRE_KYC": "false",
        "BANKQ_ADMIN_USERNAME": ADMIN[0],
        "BANKQ_ADMIN_PASSWORD": ADMIN[1],
        "BANKQ_REDRIVE_AFTER_SECONDS": "3",
        "BANKQ_OUTBOX_RELAY_SECONDS": "1",
        **extra,
    }


def children(pid: int) -> list[int]:
    """Live direct children of a process, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    for child in children(pid):
        found |= {child} | descendants(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Stack:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}
        self._ready_before: dict[str, int] = {}
        self.base = ""

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_api(self, workers: int = 1) -> str:
        port = free_port()
        self._spawn(
            "api",
            [
                "-m",
                "gunicorn",
                "-c",
                "python:api.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                "8",
                "--no-control-socket",
                "api.wsgi:app",
            ],
        )
        self.base = f"http://127.0.0.1:{port}"
        self._wait(lambda: requests.get(f"{self.base}/health", timeout=1).ok, "api", 30)
        return self.base

    def start_worker(
        self, name: str = "worker", queues: str = "transfers,kyc,notify,default", concurrency: int = 2,
        pool: str = "prefork", wait: bool = True,
    ) -> None:
        """wait=False: return once it is spawned (start the API meanwhile), then call wait_ready(name)."""
        before = self.log(name).count(" ready.")
        self._ready_before[name] = before
        self._spawn(
            name,
            [
                "-m",
                "celery",
                "-A",
                "tasks",
                "worker",
                "-Q",
                queues,
                "--concurrency",
                str(concurrency),
                "--pool",
                pool,
                "--hostname",
                f"{name}-{uuid.uuid4().hex[:6]}@%h",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        if wait:
            self.wait_ready(name)

    def wait_ready(self, name: str = "worker") -> None:
        before = self._ready_before.get(name, 0)
        self._wait(lambda: self.log(name).count(" ready.") > before, name, 60)

    def start_webhooks_worker(self) -> None:
        """The webhooks worker as `make run` starts it: threads, and a dispatcher that hands over deliveries as
        job events commit."""
        self.start_worker("webhooks-worker", queues="webhooks", concurrency=4, pool="threads")

    def start_beat(self) -> None:
        self._spawn("beat", ["-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO"])

    def start_launcher(self) -> str:
        port = free_port()
        self.env["PORT"] = str(port)
        self._spawn("launcher", ["-m", "tasks.launcher"])
        self.base = f"http://127.0.0.1:{port}"
        self._wait(lambda: requests.get(f"{self.base}/ready", timeout=2).ok, "launcher", 90)
        return self.base

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(30)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in list(self.procs.items()):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            self.procs.pop(name)

    def _wait(self, ready: Any, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log(name)[-4000:]}")
            try:
                if ready():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{name} not ready after {timeout}s:\n{self.log(name)[-4000:]}")


class Client:
    """A small HTTP client speaking bankq's API."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/") + "/api/v1"
        self.http = requests.Session()
        # Like a browser: a GET that meets a keep-alive connection the server closed a moment ago is sent again
        # (gunicorn closes idle ones after 2 s, and a test that sleeps 2 s can race it). POSTs are never retried.
        # Answers are never retried here: a 503 or 429 goes back to the test as it came.
        retry = Retry(total=3, connect=3, read=3, status=0, backoff_factor=0.1, respect_retry_after_header=False)
        self.http.mount("http://", HTTPAdapter(max_retries=retry))

    def call(
        self, method: str, path: str, token: str | None = None, key: str | None = None, **kw: Any
    ) -> requests.Response:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if key:
            headers["Idempotency-Key"] = key
        return self.http.request(method, self.base + path, headers=headers, timeout=30, **kw)

    def login(self, username: str, password: str) -> str:
        answer = self.call("POST", "/auth/login", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def customer(self, name: str) -> tuple[str, str]:
        password = f"lantern-harbour-{len(name)}7"
        created = self.call(
            "POST",
            "/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": password, "full_name": name.title()},
        )
        assert created.status_code == 201, created.text
        return str(created.json()["id"]), self.login(name, password)

    def account(self, token: str, currency: str = "EUR", owner_id: str | None = None) -> str:
        body: dict[str, Any] = {"currency": currency, "type": "checking"}
        if owner_id:
            body["owner_id"] = owner_id
        answer = self.call("POST", "/accounts", token, json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def transfer(
        self, token: str, key: str, source: str, destination: str, amount: str, currency: str = "EUR", **extra: Any
    ) -> requests.Response:
        body = {
            "source_account_id": source,
            "destination_account_id": destination,
            "amount": amount,
            "currency": currency,
            **extra,
        }
        return self.call("POST", "/transfers", token, key, json=body)

    def wait_job(self, token: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.call("GET", f"/jobs/{job_id}", token).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return dict(job)
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} still {job['status']} after {timeout}s")

    def deposit(self, admin: str, account: str, amount: str, key: str) -> None:
        job = self.call("POST", "/deposits", admin, key, json={"account_id": account, "amount": amount,
                                                                "currency": "EUR"})
        assert job.status_code == 202, job.text
        assert self.wait_job(admin, job.json()["id"])["status"] == "succeeded"

    def payer_and_payee(self, admin: str, funds: str) -> tuple[str, str, str, str]:
        """Alice, with an EUR account holding funds, and Bob, with an empty one: (alice, bob, source, destination),
        the first two being their tokens."""
        _, alice = self.customer("alice")
        _, bob = self.customer("bob")
        source, destination = self.account(alice), self.account(bob)
        self.deposit(admin, source, funds, "fund-alice")
        return alice, bob, source, destination

    def balance(self, token: str, account_id: str) -> str:
        return str(self.call("GET", f"/accounts/{account_id}", token).json()["balance"])
