"""Keeps a few child processes running: restarts one that exits with backoff, gives up on a crash loop, and
stops them all in order. `make run` (tasks.launcher) supervises the API, a worker and beat with it."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("bankq.supervisor")

PR_SET_PDEATHSIG = 1
FATAL_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _die_with_parent() -> None:
    """In each child, before exec: if the supervisor itself is killed outright (SIGKILL, a crash), the kernel
    sends the child SIGTERM, so no API or worker outlives it unsupervised."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the orderly stop still works
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    stop_timeout: float
    proc: subprocess.Popen | None = None
    restarts: deque[float] = field(default_factory=deque)
    start_at: float = 0.0  # when a pending restart is due

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class CrashLoop(Exception):
    """A child exited too often in too short a time; restarting it again would only hide the fault."""


class Supervisor:
    def __init__(
        self,
        env: dict[str, str],
        *,
        max_restarts: int = 5,
        window_seconds: float = 60.0,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
        say: Callable[[str], None] = print,
    ) -> None:
        self.env = env
        self.children: list[Child] = []
        self.max_restarts = max_restarts
        self.window = window_seconds
        self.backoff = backoff_seconds
        self.max_backoff = max_backoff_seconds
        self.say = say

    def add(self, name: str, argv: list[str], *, stop_timeout: float = 20.0) -> None:
        self.children.append(Child(name, argv, stop_timeout))

    def start_all(self) -> None:
        for child in self.children:
            self._start(child)

    def _start(self, child: Child) -> None:
        # Each child gets its own session: a terminal's Ctrl-C reaches the supervisor alone, which then stops the
        # children in order (the API first, so nothing new is accepted while workers drain).
        child.proc = subprocess.Popen(
            child.argv, env=self.env, start_new_session=True, preexec_fn=_die_with_parent  # noqa: PLW1509
        )

    def check(self, now: float | None = None) -> None:
        """Restart children that exited (after their backoff); raise CrashLoop when one keeps dying."""
        now = time.monotonic() if now is None else now
        for child in self.children:
            if child.proc is None:
                if now >= child.start_at:
                    self.say(f"bankq: restarting {child.name}")
                    self._start(child)
                continue
            code = child.proc.poll()
            if code is None:
                continue
            while child.restarts and now - child.restarts[0] > self.window:
                child.restarts.popleft()
            if len(child.restarts) >= self.max_restarts:
                raise CrashLoop(
                    f"{child.name} exited with {code} after {len(child.restarts)} restarts in "
                    f"{self.window:.0f} s; see its log above"
                )
            delay = min(self.max_backoff, self.backoff * 2 ** len(child.restarts))
            child.restarts.append(now)
            child.proc = None
            child.start_at = now + delay
            self.say(f"bankq: {child.name} exited with {code}; restarting it in {delay:.1f} s")

    def stop_all(self) -> None:
        """SIGTERM in start order, each child given its own time (a worker finishes what it holds; what it had
        only reserved goes back to the queue), then SIGKILL for anything still running."""
        for child in self.children:
            if not child.running:
                continue
            assert child.proc is not None
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(timeout=child.stop_timeout)
            except subprocess.TimeoutExpired:
                self.say(f"bankq: {child.name} did not stop within {child.stop_timeout:.0f} s; killing it")
                _kill_group(child.proc)
        for child in self.children:
            if child.proc is not None:
                _kill_group(child.proc)  # leftovers in the child's session (pool processes of a killed parent)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _caught_signals(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        return None
    return None


class ParentWatch:
    """Notices when the process that started us wants everything to stop although no signal reached us.

    GNU make forwards SIGTERM to the recipe it runs, but on SIGINT or SIGHUP sent to make alone (by a script, an
    IDE, `kill -INT`) it only waits for the recipe, expecting a terminal to have signalled the whole group. Make
    handles such a signal by resetting it to the default action while it waits; /proc shows the handler gone."""

    def __init__(self) -> None:
        self.ppid = os.getppid()
        try:
            self.is_make = Path(f"/proc/{self.ppid}/comm").read_text().strip() in {"make", "gmake"}
        except OSError:
            self.is_make = False
        self.caught = _caught_signals(self.ppid) if self.is_make else None

    def stop_requested(self) -> str | None:
        if os.getppid() != self.ppid:
            return "the parent process is gone"
        if self.caught is None:
            return None
        now = _caught_signals(self.ppid)
        if now is None:
            return "the parent process is gone"
        for sig in FATAL_SIGNALS:
            bit = 1 << (sig - 1)
            if self.caught & bit and not now & bit:
                return f"make received {sig.name}"
        return None
