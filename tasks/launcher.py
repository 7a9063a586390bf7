"""`make run`: migrate, then run the API, a worker and beat in the foreground, supervised, until Ctrl-C or SIGTERM.

The same processes run on the embedded default (SQLite + a filesystem broker under BANKQ_DATA_DIR) and on
PostgreSQL + Redis when DATABASE_URL and REDIS_URL are set. A process that exits is restarted with backoff; five
restarts of one process within a minute stop everything, with the reason."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time

from core.bank import Bank
from core.errors import BankqError
from core.setup import prepare
from tasks.supervisor import CrashLoop, ParentWatch, Supervisor

# How long each process may take to stop cleanly: the API finishes its requests, the worker the tasks it holds.
STOP_SECONDS = {"api": 15.0, "beat": 10.0, "worker": 60.0, "webhooks": 30.0}


def commands(env: dict[str, str]) -> dict[str, list[str]]:
    py = sys.executable
    host, port = env.get("HOST", "127.0.0.1"), env.get("PORT", "8000")
    return {
        "api": [
            py,
            "-m",
            "gunicorn",
            # gthread workers whose own error answers are problem documents; no --worker-class here, it would win
            "-c",
            "python:api.gunicorn_conf",
            "--bind",
            f"{host}:{port}",
            "--workers",
            env.get("WEB_CONCURRENCY", "2"),
            "--threads",
            env.get("WEB_THREADS", "64"),
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
        # Webhook attempts wait on other people's servers (up to 15 s each): threads, and a worker of their own, so
        # a slow endpoint never holds a transfer back. Its dispatcher hands over deliveries as events commit.
        "webhooks": [
            py,
            "-m",
            "celery",
            "-A",
            "tasks",
            "worker",
            "--loglevel",
            env.get("LOG_LEVEL", "INFO"),
            "-Q",
            "webhooks",
            "--pool",
            "threads",
            "--concurrency",
            env.get("WEBHOOK_CONCURRENCY", "8"),
            "--hostname",
            "bankq-webhooks@%h",
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
    supervisor = Supervisor(
        env,
        backoff_seconds=float(env.get("BANKQ_RESTART_BACKOFF_SECONDS") or 1.0),
        say=lambda line: print(line, flush=True),
    )
    for name, argv in commands(env).items():
        supervisor.add(name, argv, stop_timeout=STOP_SECONDS[name])
    reason = ""

    def stop(signum: int, _frame: object) -> None:
        nonlocal reason
        reason = reason or f"received {signal.Signals(signum).name}"

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    parent = ParentWatch()
    supervisor.start_all()
    exit_code = 0
    while not reason:
        try:
            supervisor.check()
        except CrashLoop as exc:
            reason, exit_code = f"crash loop: {exc}", 1
            break
        reason = parent.stop_requested() or ""
        time.sleep(0.2)
    print(f"bankq: stopping ({reason})", flush=True)
    supervisor.stop_all()
    print("bankq: stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
