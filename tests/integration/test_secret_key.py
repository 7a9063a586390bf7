"""The old compose default key signs nothing we accept, and no process starts with a published key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask_jwt_extended import JWTManager, create_access_token

from core.settings import Settings
from tests.support import make_user

ROOT = Path(__file__).resolve().parents[2]
OLD_COMPOSE_DEFAULT = "dev-only-insecure-secret-key-change-me"


def _mint_admin_token(key: str, user_id: str, token_version: int) -> str:
    """An access token shaped exactly like ours (role admin, token version, refresh id), signed with `key`."""
    minter = Flask("minter")
    minter.config.update(JWT_SECRET_KEY=key, JWT_ALGORITHM="HS256")
    JWTManager(minter)
    with minter.app_context():
        claims = {"role": "admin", "tv": token_version, "rjti": "forged-refresh-id"}
        return create_access_token(identity=user_id, additional_claims=claims)


def test_a_token_signed_with_the_old_compose_default_key_is_refused(bank, client):
    assert bank.settings.secret_key != OLD_COMPOSE_DEFAULT
    admin = make_user(bank, role="admin")

    forged = _mint_admin_token(OLD_COMPOSE_DEFAULT, admin.id, admin.token_version)
    for path in ("/api/v1/admin/ledger/check", "/api/v1/admin/queues", "/api/v1/auth/me"):
        answer = client.get(path, headers={"Authorization": f"Bearer {forged}"})
        assert answer.status_code == 401, path
        assert answer.get_json()["code"] == "token_invalid"

    # The same token signed with the configured key is accepted: only the key made the difference.
    genuine = _mint_admin_token(bank.settings.secret_key, admin.id, admin.token_version)
    assert client.get("/api/v1/admin/ledger/check", headers={"Authorization": f"Bearer {genuine}"}).status_code == 200


def test_the_app_refuses_to_be_built_with_the_old_default_key(settings: Settings, tmp_path, monkeypatch):
    from api import create_app

    monkeypatch.setenv("BANKQ_SECRET_KEY", OLD_COMPOSE_DEFAULT)
    monkeypatch.setenv("BANKQ_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="BANKQ_SECRET_KEY is a published example key"):
        create_app()
    with pytest.raises(ValueError, match="BANKQ_SECRET_KEY is a published example key"):
        Settings.from_env({"BANKQ_DATA_DIR": str(tmp_path), "DATABASE_URL": settings.database_url,
                           "REDIS_URL": settings.redis_url or "", "BANKQ_SECRET_KEY": OLD_COMPOSE_DEFAULT})


BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([str(BIN / "gunicorn"), "--bind", "127.0.0.1:0", "api.wsgi:app"], id="gunicorn"),
        pytest.param(
            [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "transfers", "--concurrency", "1",
             "--without-gossip", "--without-mingle"],
            id="celery-worker",
        ),
        pytest.param([sys.executable, "-m", "celery", "-A", "tasks", "beat"], id="celery-beat"),
        pytest.param([sys.executable, "-m", "tasks.launcher"], id="make-run-launcher"),
    ],
)
def test_no_process_starts_with_the_old_default_key(settings: Settings, tmp_path, command):
    env = {
        **os.environ,
        "BANKQ_DATA_DIR": str(tmp_path),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "BANKQ_SECRET_KEY": OLD_COMPOSE_DEFAULT,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{command[0]} kept running with the old default key: {exc.stderr!r}")
    assert done.returncode != 0
    assert "BANKQ_SECRET_KEY is a published example key" in done.stderr + done.stdout
    assert "secrets.token_urlsafe(48)" in done.stderr + done.stdout
