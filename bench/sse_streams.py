"""`python -m bench.sse_streams`: how many event streams one API process holds while ordinary requests still answer.

For each --threads setting: one gunicorn worker on loopback over a throwaway PostgreSQL; ordinary authenticated
requests (GET /api/v1/auth/me) are timed with no stream open, then with the process's stream cap open (every slot
the gate gives, each stream really reading), and printed as ratios to that baseline. Bounded: a few hundred
requests and at most ~130 streams per setting."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from core.bank import Bank
from core.settings import Settings
from core.setup import prepare
from tests import servers, support

ROOT = Path(__file__).resolve().parent.parent
THREADS = (4, 32, 128)
REQUESTS = 300
CLIENTS = 4
MAX_OPEN = 130


def timed_requests(base: str, token: str) -> tuple[float, float, float]:
    """(requests per second, p50 ms, p99 ms) for REQUESTS calls from CLIENTS threads."""
    session_local = threading.local()

    def one(_: int) -> float:
        session = getattr(session_local, "s", None) or requests.Session()
        session_local.s = session
        started = time.perf_counter()
        answer = session.get(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        return time.perf_counter() - started

    began = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        times = sorted(pool.map(one, range(REQUESTS)))
    elapsed = time.perf_counter() - began
    return REQUESTS / elapsed, statistics.median(times) * 1000, times[int(len(times) * 0.99) - 1] * 1000


def open_streams(base: str, token: str) -> list[requests.Response]:
    streams = []
    for _ in range(MAX_OPEN):
        answer = requests.get(f"{base}/api/v1/events", headers={"Authorization": f"Bearer {token}"}, stream=True,
                              timeout=10)
        if answer.status_code == 503:
            answer.close()
            break
        assert answer.status_code == 200, answer.text
        next(answer.iter_content(chunk_size=None))  # the retry hint: the stream is open and served
        streams.append(answer)
    return streams


def run(threads: int, env: dict[str, str], logs: Path) -> dict[str, float]:
    port = servers.free_port()
    with open(logs / f"api-{threads}.log", "ab") as log:
        api = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:api.gunicorn_conf", "--bind",
                                f"127.0.0.1:{port}", "--workers", "1", "--threads", str(threads), "--no-control-socket",
                                "api.wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        servers.wait_for_port(port)
        user = f"bench{threads}"
        requests.post(f"{base}/api/v1/auth/register", json={"username": user, "email": f"{user}@example.com",
                                                           "password": "lantern-harbour-77", "full_name": "Bench"})
        token = requests.post(f"{base}/api/v1/auth/login",
                              json={"username": user, "password": "lantern-harbour-77"}).json()["access_token"]
        timed_requests(base, token)  # warm-up
        rate, p50, p99 = timed_requests(base, token)
        streams = open_streams(base, token)
        busy_rate, busy_p50, busy_p99 = timed_requests(base, token)
        for stream in streams:
            stream.close()
        return {"threads": threads, "streams": len(streams), "rate": rate, "p50": p50, "p99": p99,
                "busy_rate": busy_rate, "busy_p50": busy_p50, "busy_p99": busy_p99}
    finally:
        api.terminate()
        api.wait(30)


def main() -> int:
    pg = servers.start_postgres()
    logs = Path(tempfile.mkdtemp(prefix="bankq-bench-sse-"))
    try:
        url = support.create_database(pg.url, "bankq_bench_sse")
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": "", "CELERY_BROKER_URL": "",
               "BANKQ_DATA_DIR": str(logs / "data"), "BANKQ_SECRET_KEY": "bench-sse-key-0123456789abcdef0123456789",
               "BANKQ_RATE_LIMITS_ENABLED": "false"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        prepare(Bank(Settings.from_env(env)))
        print(f"{'threads':>7} {'streams held':>12} {'req/s ratio':>11} {'p50 ratio':>9} {'p99 ratio':>9}"
              f"   (baseline: req/s, p50 ms, p99 ms with no stream open)")
        for threads in THREADS:
            r = run(threads, env, logs)
            ratios = r["busy_rate"] / r["rate"], r["busy_p50"] / r["p50"], r["busy_p99"] / r["p99"]
            print(f"{threads:>7} {r['streams']:>12} {ratios[0]:>11.2f} {ratios[1]:>9.2f} {ratios[2]:>9.2f}"
                  f"   ({r['rate']:.0f}, {r['p50']:.1f}, {r['p99']:.1f})")
        return 0
    finally:
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
