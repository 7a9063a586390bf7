"""docker-compose.yml is valid, has no default signing key, and runs the workers and flower as documented.

Runs Debian's `docker-compose` (installed by `make test` through .ci/system-deps), which validates and
interpolates the file without a Docker engine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def _docker_compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed, so docker-compose.yml cannot be validated: run `make test` "
            "(it installs it through .ci/system-deps) or `apt-get install docker-compose`"
        )
    return binary


def _compose(*args: str, secret_key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BANKQ_SECRET_KEY" and not k.startswith("COMPOSE_")}
    if secret_key is not None:
        env["BANKQ_SECRET_KEY"] = secret_key
    return subprocess.run(
        [_docker_compose(), "-f", str(COMPOSE), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid_with_a_secret_key() -> None:
    done = _compose("config", "-q", secret_key=secrets.token_urlsafe(48))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("secret_key", [None, ""], ids=["unset", "empty"])
def test_compose_refuses_to_start_without_a_secret_key(secret_key: str | None) -> None:
    done = _compose("config", "-q", secret_key=secret_key)
    assert done.returncode != 0
    assert "set BANKQ_SECRET_KEY to a long random value" in done.stderr
    assert "secrets.token_urlsafe(48)" in done.stderr


def _raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_no_default_secret_key() -> None:
    raw = _raw()
    value = raw["x-env"]["BANKQ_SECRET_KEY"]
    assert value.startswith("${BANKQ_SECRET_KEY:?"), value
    assert ":-" not in value and "dev-only" not in COMPOSE.read_text()
    # every app service takes it from that one place; the pooler only borrows the image for its binary
    app_services = [name for name, service in raw["services"].items() if service.get("image") == "bankq:latest"]
    assert {"api", "migrate"} <= set(app_services)
    for name in app_services:
        service = raw["services"][name]
        if name == "pgbouncer":
            assert "environment" not in service and service["command"][0] == "sh"
            continue
        assert "BANKQ_SECRET_KEY" in service["environment"], name


def _services() -> dict[str, Any]:
    done = _compose("config", secret_key=secrets.token_urlsafe(48))
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["services"]


def _flag(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def test_worker_prefetch_and_autoscale() -> None:
    services = _services()
    transfers = services["worker-transfers"]["command"]
    assert _flag(transfers, "--autoscale") == "8,2"
    assert _flag(transfers, "--prefetch-multiplier") is None  # keeps celeryconfig's batch-friendly prefetch
    for name in ("worker-kyc", "worker-notify"):
        assert _flag(services[name]["command"], "--prefetch-multiplier") == "1", name
    for name in ("worker-transfers", "worker-kyc", "worker-notify", "worker-default"):
        queue = name.removeprefix("worker-")
        assert _flag(services[name]["command"], "-Q") == queue


def test_flower_uses_the_app_broker_settings_and_enables_events() -> None:
    services = _services()
    flower = services["flower"]
    assert flower["image"] == "bankq:latest"
    assert flower["command"][:4] == ["celery", "-A", "tasks", "flower"]
    assert "--enable_events=True" in flower["command"]
    assert not any("--broker" in part for part in flower["command"])
    for key in ("REDIS_URL", "CELERY_BROKER_URL", "BANKQ_SECRET_KEY"):
        assert flower["environment"][key] == services["worker-transfers"]["environment"][key], key
