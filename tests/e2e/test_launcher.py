"""`make run` supervises: a process that dies is restarted, a crash loop stops everything with the reason, and a
signal sent to the `make run` process alone (as systemd, an IDE or a script sends it) stops every process."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import requests

from tests.e2e.stack import ADMIN, ROOT, Client, Stack, alive, children, cmdline, descendants, embedded_env
from tests.servers import free_port

pytestmark = pytest.mark.e2e


def supervised_env(tmp_path, **extra: str) -> dict[str, str]:
    return embedded_env(tmp_path / "var", BANKQ_RESTART_BACKOFF_SECONDS="0.2", **extra)


def component(launcher_pid: int, word: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in children(launcher_pid):
            if word in cmdline(pid):
                return pid
        time.sleep(0.1)
    raise TimeoutError(f"no {word} process under the launcher")


def wait_until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(what)


def test_a_killed_process_is_restarted_and_work_goes_on(tmp_path):
    stack = Stack(supervised_env(tmp_path), tmp_path)
    try:
        client = Client(stack.start_launcher())
        launcher = stack.procs["launcher"].pid
        processes = {"beat": " beat", "worker": "bankq-all@", "webhooks": "bankq-webhooks@"}
        for word in processes.values():
            before = component(launcher, word)
            os.killpg(before, signal.SIGKILL)
            wait_until(lambda w=word, b=before: component(launcher, w) != b, 30, f"{word} not restarted")
        log = stack.log("launcher")
        for name in processes:
            assert f"bankq: {name} exited with -9; restarting it in" in log
        # The restarted worker posts, and the API never went away.
        admin = client.login(*ADMIN)
        _, alice = client.customer("alice")
        account = client.account(alice)
        deposit = client.call("POST", "/deposits", admin, "d1",
                              json={"account_id": account, "amount": "10.00", "currency": "EUR"})
        assert deposit.status_code == 202, deposit.text
        assert client.wait_job(admin, deposit.json()["id"], timeout=90)["status"] == "succeeded"
    finally:
        stack.stop_all()


def test_a_crash_loop_stops_everything_and_says_why(tmp_path):
    # An invalid log level makes the worker and beat exit at once, every time.
    stack = Stack(supervised_env(tmp_path, LOG_LEVEL="bogus"), tmp_path)
    try:
        stack._spawn("launcher", ["-m", "tasks.launcher"])
        launcher = stack.procs["launcher"]
        assert launcher.wait(120) == 1
        log = stack.log("launcher")
        assert "restarting it in" in log
        assert "bankq: stopping (crash loop:" in log and "5 restarts in 60 s" in log, log[-3000:]
        assert not [p for p in descendants(launcher.pid) if alive(p)]
    finally:
        stack.stop_all()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_make_run_alone_stops_every_process(tmp_path, sig):
    port = free_port()
    env = {**os.environ, **supervised_env(tmp_path), "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(tmp_path / "make.log", "wb") as log:
        make = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def ready() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/ready", timeout=2).ok
            except requests.RequestException:
                return False

        wait_until(ready, 120, "make run not ready:\n" + (tmp_path / "make.log").read_text()[-3000:])
        processes = descendants(make.pid)
        assert len(processes) >= 4  # launcher, api, worker, beat (and their own children)
        os.kill(make.pid, sig)  # make alone, not its process group
        make.wait(90)
        wait_until(lambda: not [p for p in processes if alive(p)], 30, "processes left running")
        output = (tmp_path / "make.log").read_text()
        assert "bankq: stopped" in output, output[-3000:]
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
        for pid in descendants(make.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_ctrl_c_drains_and_nothing_accepted_is_lost(e2e_env, tmp_path):
    """Ctrl-C while transfers are in flight: the worker finishes what it runs (warm shutdown), what it had only
    reserved goes back, and after the next start every accepted job ends, each posted once."""
    first = Stack({**e2e_env, "BANKQ_RESTART_BACKOFF_SECONDS": "0.2"}, tmp_path)
    try:
        client = Client(first.start_launcher())
        admin = client.login(*ADMIN)
        _, alice = client.customer("alice")
        _, bob = client.customer("bob")
        source, destination = client.account(alice), client.account(bob)
        funded = client.call("POST", "/deposits", admin, "fund",
                             json={"account_id": source, "amount": "500.00", "currency": "EUR"})
        assert client.wait_job(admin, funded.json()["id"])["status"] == "succeeded"
        accepted = []
        for i in range(150):
            answer = client.transfer(alice, f"t{i}", source, destination, "1.00")
            assert answer.status_code == 202, answer.text
            accepted.append(answer.json()["id"])
        launcher = first.procs["launcher"]
        launcher.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C delivers to the launcher
        assert launcher.wait(90) == 0
        log = first.log("launcher")
        assert "bankq: stopping (received SIGINT)" in log and "bankq: stopped" in log
        assert "did not stop within" not in log, log[-3000:]  # nobody had to be killed
    finally:
        first.stop_all()

    logs = tmp_path / "second"
    logs.mkdir()
    second = Stack(e2e_env, logs)
    try:
        client = Client(second.start_launcher())
        for job_id in accepted:
            assert client.wait_job(alice, job_id, timeout=90)["status"] == "succeeded"
        assert client.balance(bob, destination) == "150.00"
        assert client.balance(alice, source) == "350.00"
        assert client.call("GET", "/admin/ledger/check", client.login(*ADMIN)).json()["ok"]
    finally:
        second.stop_all()
