"""Everything the benchmark starts (servers, scratch databases, processes) on one stack that is always unwound."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import requests

from bench.cpu import CpuMeter
from tests import servers, support

ROOT = Path(__file__).resolve().parent.parent
# Where results and process logs go: bench/results, or BENCH_RESULTS_DIR (the test that runs the bench tiny).
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / "bench" / "results")


class Interrupted(BaseException):
    """SIGTERM, turned into an exception so the stack unwinds as it does on Ctrl-C."""


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


def psycopg_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Process:
    """A child in its own session, so stopping it stops everything it forked (gunicorn and celery workers)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._stopped = False
        self.popen = subprocess.Popen(command, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.popen.poll() is None:
                # The leader shuts down its own children (gunicorn and celery warm shutdown) ...
                self.popen.terminate()
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            # ... and whatever is still left in its session, or the leader itself if it hung, is killed.
            self._signal(signal.SIGKILL)
            if self.popen.poll() is None:
                self.popen.wait(5)
        finally:
            self._log.close()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


class Stack:
    """Servers, databases and processes, stopped in reverse order on exit, error, Ctrl-C or SIGTERM."""

    def __init__(self) -> None:
        self._exit = contextlib.ExitStack()
        self.work_dir = Path(tempfile.mkdtemp(prefix="bankq-bench-"))
        self.log_dir = RESULTS / "logs"
        self.server_url = ""
        self.redis_url = ""
        self.postgres_pid: int | None = None  # only for servers the bench started: CPU accounting
        self.redis_pid: int | None = None

    def __enter__(self) -> Stack:
        self._exit.__enter__()
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
        self._exit.callback(signal.signal, signal.SIGTERM, previous)
        self._exit.callback(_remove_tree, self.work_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for old in self.log_dir.glob("*.log"):
            old.unlink()
        return self

    def __exit__(self, *exc: object) -> bool | None:
        # A second Ctrl-C while cleaning up must not leave servers behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return self._exit.__exit__(*exc)  # type: ignore[arg-type]
        finally:
            signal.signal(signal.SIGINT, previous)

    def callback(self, fn: Callable[..., object], *args: object) -> None:
        self._exit.callback(fn, *args)

    def start_servers(self, database_url: str | None, redis_url: str | None) -> None:
        if database_url:
            self.server_url = psycopg_url(database_url)
        else:
            server = servers.start_postgres()
            self._exit.callback(server.stop)
            self.server_url = server.url
            if server.directory:
                pid_file = server.directory / "data" / "postmaster.pid"
                with contextlib.suppress(OSError, ValueError, IndexError):
                    self.postgres_pid = int(pid_file.read_text().split()[0])
        if redis_url:
            self.redis_url = redis_url
        else:
            server = servers.start_redis()
            self._exit.callback(server.stop)
            self.redis_url = server.url
            self.redis_pid = server.process.pid if server.process else None

    def scratch_database(self, prefix: str) -> str:
        url = support.create_database(self.server_url, prefix=prefix)
        self._exit.callback(support.drop_database, self.server_url, url)
        return url

    def cpu_meter(self, **groups: Process | list[int]) -> CpuMeter:
        """CPU of the servers, of these process trees, and of the bench process itself."""
        roots: dict[str, Callable[[], list[int]]] = {
            "postgres": lambda: [self.postgres_pid] if self.postgres_pid else [],
            "redis": lambda: [self.redis_pid] if self.redis_pid else [],
        }
        for name, group in groups.items():
            pids = [group.popen.pid] if isinstance(group, Process) else list(group)
            roots[name] = lambda pids=pids: pids  # type: ignore[misc]
        return CpuMeter(roots)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> Process:
        process = Process(name, command, env, self.log_dir)
        self._exit.callback(process.stop)
        return process


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def wait_for_http(url: str, process: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.check_alive()
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s; log:\n{process.log_tail()}")


PHASES: list[dict[str, object]] = []


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Log a phase and keep its duration and the machine's load around it (other work on the box is noise)."""
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    yield
    seconds = time.monotonic() - started
    PHASES.append({"phase": name, "seconds": round(seconds, 1), "load_before": round(load_before, 2),
                   "load_after": round(os.getloadavg()[0], 2)})
    print(f"bench: {name} done in {seconds:.1f}s", file=sys.stderr, flush=True)
