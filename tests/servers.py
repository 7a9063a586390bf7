"""Throwaway PostgreSQL, Redis and RabbitMQ servers for the tests, started from the installed binaries.

TEST_DATABASE_URL / TEST_REDIS_URL / TEST_AMQP_URL point the tests at existing servers instead. PostgreSQL refuses
to run as root, so as root the server runs as an unprivileged user (postgres if it exists, else nobody)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        raise RuntimeError(f"{name} not found: install PostgreSQL (make system-deps) or set TEST_DATABASE_URL")
    return candidates[0]


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


@dataclass
class Server:
    url: str
    process: subprocess.Popen | None = None
    directory: Path | None = None
    stop_command: list[str] = field(default_factory=list)
    port: int = 0
    start_command: list[str] = field(default_factory=list)

    def halt(self) -> None:
        """Stop the server abruptly (a crash: PostgreSQL stops without a checkpoint, Redis loses what it held),
        keeping its data folder so resume() starts it again on the same port."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
        elif self.stop_command:
            subprocess.run(self.stop_command, check=True, capture_output=True)

    def resume(self) -> None:
        if self.process is not None:
            self.process = subprocess.Popen(self.start_command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            subprocess.run(self.start_command, check=True, capture_output=True)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.stop_command:
            subprocess.run(self.stop_command, check=False, capture_output=True)
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres(*, crash_safe: bool = False) -> Server:
    """A throwaway server tuned for speed. crash_safe keeps synchronous commit, so a server killed mid-run (the
    chaos test) loses no transaction it acknowledged, as a production server would not."""
    user = _unprivileged_user()
    run_as = ["runuser", "-u", user, "--"] if user else []
    directory = Path(tempfile.mkdtemp(prefix="bankq-pg-"))
    data = directory / "data"
    if user:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        [*run_as, _pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={directory} "
        f"-c fsync=off -c synchronous_commit={'on' if crash_safe else 'off'} -c full_page_writes=off "
        "-c max_connections=200 "
        "-c shared_buffers=128MB"
    )
    start = [*run_as, _pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(directory / "log"), "-w", "-t", "60",
             "start"]
    subprocess.run(start, check=True, capture_output=True)
    return Server(
        url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
        directory=directory,
        port=port,
        stop_command=[*run_as, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
        start_command=start,
    )


def start_redis(port: int | None = None) -> Server:
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redis-server not found: install it (make system-deps) or set TEST_REDIS_URL")
    port = port or free_port()
    directory = Path(tempfile.mkdtemp(prefix="bankq-redis-"))
    # No persistence, like the machines bankq runs beside: a restart loses every queued message.
    start = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory), "--protected-mode", "no"]
    process = subprocess.Popen(start, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return Server(url=f"redis://127.0.0.1:{port}/0", process=process, directory=directory, port=port,
                  start_command=start)


def start_pgbouncer(upstream_port: int, *, pool_size: int = 4) -> Server:
    """PgBouncer in transaction mode in front of a PostgreSQL on 127.0.0.1: few server connections shared by many
    clients, each transaction on whichever is free. (It refuses to run as root, like PostgreSQL.)"""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        raise RuntimeError("pgbouncer not found: install it (make system-deps)")
    user = _unprivileged_user()
    run_as = ["runuser", "-u", user, "--"] if user else []
    directory = Path(tempfile.mkdtemp(prefix="bankq-pgbouncer-"))
    port = free_port()
    (directory / "users.txt").write_text('"postgres" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"[databases]\n* = host=127.0.0.1 port={upstream_port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"
        f"listen_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {directory / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 500\n"
        f"logfile = {directory / 'log'}\nignore_startup_parameters = extra_float_digits\n"
    )
    if user:
        entry = pwd.getpwnam(user)
        for path in (directory, *directory.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    start = [*run_as, binary, str(directory / "pgbouncer.ini")]
    process = subprocess.Popen(start, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return Server(url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", process=process,
                  directory=directory, port=port, start_command=start)


def postgres() -> Server:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return Server(url=url)
    return start_postgres()


def redis() -> Server:
    url = os.environ.get("TEST_REDIS_URL")
    return Server(url=url) if url else start_redis()


def _rabbitmq_bin(name: str) -> str:
    # Debian's /usr/sbin/rabbitmq-server is a wrapper that, as root, re-runs the script as the rabbitmq user with
    # that user's HOME (and so the system node's Erlang cookie); the script behind it runs as any user, root too.
    for candidate in (f"/usr/lib/rabbitmq/bin/{name}", shutil.which(name)):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError(f"{name} not found: install rabbitmq-server (make system-deps) or set TEST_AMQP_URL")


def _epmd_bin() -> str:
    found = shutil.which("epmd") or next(iter(sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd"), reverse=True)), "")
    if not found:
        raise RuntimeError("epmd not found: install rabbitmq-server (make system-deps) or set TEST_AMQP_URL")
    return found


def wait_for_amqp(
    url: str, timeout: float = 60.0, process: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    """Until an AMQP connection opens: RabbitMQ listens a moment before it accepts logins."""
    from kombu import Connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            raise RuntimeError(f"rabbitmq-server exited with {process.returncode}:\n{tail}")
        try:
            with Connection(url, connect_timeout=1) as conn:
                conn.ensure_connection(max_retries=1, timeout=1)
                return
        except Exception:
            time.sleep(0.2)
    raise TimeoutError(f"no AMQP connection to {url} after {timeout}s")


@dataclass
class RabbitMQ(Server):
    """A throwaway RabbitMQ node with its own epmd, ports, cookie and data under one temporary folder.

    halt() and resume() stop and restart the node on the same port and data (durable queues survive): an outage."""

    env: dict[str, str] = field(default_factory=dict)
    epmd: subprocess.Popen | None = None

    def resume(self) -> None:
        assert self.directory is not None
        log = self.directory / "server.out"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [_rabbitmq_bin("rabbitmq-server")],
                env=self.env,
                cwd=self.directory,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_amqp(self.url, process=self.process, log=log)

    def halt(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)  # the node shuts down cleanly on SIGTERM, in about a second
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        self.halt()
        if self.epmd is not None and self.epmd.poll() is None:
            self.epmd.terminate()
            self.epmd.wait(10)
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_rabbitmq() -> RabbitMQ:
    """RabbitMQ from the installed binaries, as the current user (root works), on 127.0.0.1 only. A private epmd on
    its own port keeps the node out of any system RabbitMQ's way and leaves no daemon behind."""
    directory = Path(tempfile.mkdtemp(prefix="bankq-rabbitmq-"))
    port, dist_port, epmd_port = free_port(), free_port(), free_port()
    (directory / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{port}\n")
    (directory / "enabled_plugins").write_text("[].\n")
    (directory / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's, which names the system node
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(directory),  # the Erlang cookie is created here
        "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
        "RABBITMQ_NODENAME": f"bankq-test-{port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_BASE": str(directory),
        "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
        "RABBITMQ_LOG_BASE": str(directory / "log"),
        "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid"),
        "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_PORT": str(epmd_port),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }
    epmd = subprocess.Popen(
        [_epmd_bin(), "-port", str(epmd_port), "-address", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = RabbitMQ(url=f"amqp://guest:guest@127.0.0.1:{port}//", directory=directory, port=port, env=env, epmd=epmd)
    try:
        wait_for_port(epmd_port, 10)
        server.resume()
    except BaseException:
        server.stop()
        raise
    return server


def rabbitmq() -> Server:
    """TEST_AMQP_URL (e.g. amqp://guest:guest@127.0.0.1:5672//) or a throwaway node."""
    url = os.environ.get("TEST_AMQP_URL")
    return Server(url=url) if url else start_rabbitmq()
