"""`make run`: migrate, then run the API, a worker and beat in the foreground until Ctrl-C.

The same processes run on the embedded default (SQLite + a filesystem broker under BANKQ_DATA_DIR) and on
PostgreSQL + Redis when DATABASE_URL and REDIS_URL are set."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from core.bank import Bank
from core.errors import BankqError
from core.setup import prepare


def commands(env: dict[str, str]) -> dict[str, list[str]]:
    py = sys.executable
    host, port = env.get("HOST", "127.0.0.1"), env.get("PORT", "8000")
    return {
        "api": [
            py,
            "-m",
            "gunicorn",
            "--bind",
            f"{host}:{port}",
            "--workers",
            env.get("WEB_CONCURRENCY", "2"),
            "--worker-class",
            "gthread",
            "--threads",
            env.get("WEB_THREADS", "4"),
            "--graceful-timeout",
            "10",
            "--no-control-socket",
            "--access-logfile",
            "-",
            "api.wsgi:app",
        ],
        "worker": [
            py,
            "-m",
            "celery",
            "-A",
            "tasks",
            "worker",
            "--loglevel",
            env.get("LOG_LEVEL", "INFO"),
            "-Q",
            env.get("WORKER_QUEUES", "transfers,kyc,notify,default"),
            "--concurrency",
            env.get("WORKER_CONCURRENCY", "2"),
            "--hostname",
            "bankq-all@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        "beat": [py, "-m", "celery", "-A", "tasks", "beat", "--loglevel", env.get("LOG_LEVEL", "INFO")],
    }


def main() -> int:
    try:
        bank = Bank()
        prepare(bank)
    except (BankqError, ValueError) as exc:
        detail = getattr(exc, "errors", None) or ""
        print(f"bankq: cannot start: {exc} {detail}", file=sys.stderr)
        return 2
    settings = bank.settings
    bank.db.dispose()
    env = dict(os.environ)
    metrics_dir = settings.data_dir / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env["BANKQ_DATA_DIR"] = str(settings.data_dir)
    where = "embedded (SQLite + filesystem broker)" if settings.embedded else "PostgreSQL + broker"
    print(
        f"bankq: starting on {where}; data in {settings.data_dir}; "
        f"http://{env.get('HOST', '127.0.0.1')}:{env.get('PORT', '8000')}",
        flush=True,
    )
    procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands(env).items()}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"bankq: {name} exited with {proc.returncode}; stopping the rest", flush=True)
                exit_code = proc.returncode or 1
                stopping = True
        time.sleep(0.2)
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    print("bankq: stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
