"""The one settings object, built from explicit environments."""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

import pytest

from core.settings import Settings


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {"BANKQ_DATA_DIR": str(data_dir), **extra}


def test_embedded_default(tmp_path: Path) -> None:
    settings = Settings.from_env(_env(tmp_path))
    data_dir = tmp_path.resolve()
    assert settings.data_dir == data_dir
    assert settings.database_url == f"sqlite:///{data_dir / 'bankq.db'}"
    assert settings.embedded is True
    assert settings.redis_url is None
    assert settings.broker_url == "filesystem://"
    assert settings.broker_folder == data_dir / "broker"
    assert settings.require_kyc is True


def test_data_dir_defaults_to_var_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == (tmp_path / "var").resolve()
    assert settings.database_url == f"sqlite:///{(tmp_path / 'var').resolve() / 'bankq.db'}"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/bankq", "postgresql+psycopg://u:p@db:5432/bankq"),
        ("postgresql://u:p@db:5432/bankq?sslmode=require", "postgresql+psycopg://u:p@db:5432/bankq?sslmode=require"),
        ("postgresql+psycopg://u@db/bankq", "postgresql+psycopg://u@db/bankq"),
        ("sqlite:////srv/bankq.db", "sqlite:////srv/bankq.db"),
    ],
)
def test_database_url_is_normalised_to_psycopg3(tmp_path: Path, given: str, expected: str) -> None:
    settings = Settings.from_env(_env(tmp_path, DATABASE_URL=given))
    assert settings.database_url == expected
    assert settings.embedded is expected.startswith("sqlite")


def test_redis_url_becomes_the_broker(tmp_path: Path) -> None:
    settings = Settings.from_env(_env(tmp_path, REDIS_URL="redis://cache:6379/0"))
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.broker_url == "redis://cache:6379/0"


def test_celery_broker_url_overrides_the_broker_alone(tmp_path: Path) -> None:
    settings = Settings.from_env(
        _env(tmp_path, REDIS_URL="redis://cache:6379/0", CELERY_BROKER_URL="amqp://guest@rabbit//")
    )
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.broker_url == "amqp://guest@rabbit//"


def test_empty_urls_count_as_unset(tmp_path: Path) -> None:
    settings = Settings.from_env(_env(tmp_path, DATABASE_URL="", REDIS_URL="", CELERY_BROKER_URL=""))
    assert settings.embedded and settings.redis_url is None and settings.broker_url == "filesystem://"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, True),
        ("", True),
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        (" True ", True),
        ("0", False),
        ("false", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_require_kyc(tmp_path: Path, raw: str | None, expected: bool) -> None:
    env = _env(tmp_path) if raw is None else _env(tmp_path, BANKQ_REQUIRE_KYC=raw)
    assert Settings.from_env(env).require_kyc is expected


def test_generated_secret_key_is_private_and_stable(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    first = Settings.from_env(_env(data_dir))
    key_file = data_dir / "secret_key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.secret_key) >= 32
    assert key_file.read_text().strip() == first.secret_key
    assert Settings.from_env(_env(data_dir)).secret_key == first.secret_key


def test_each_data_dir_gets_its_own_secret(tmp_path: Path) -> None:
    one = Settings.from_env(_env(tmp_path / "one")).secret_key
    two = Settings.from_env(_env(tmp_path / "two")).secret_key
    assert one != two


def test_explicit_secret_key_wins_and_writes_nothing(tmp_path: Path) -> None:
    key = "from-the-environment-0123456789abcdef"
    settings = Settings.from_env(_env(tmp_path, BANKQ_SECRET_KEY=key))
    assert settings.secret_key == key
    assert not (tmp_path / "secret_key").exists()


def test_a_key_of_32_bytes_is_accepted(tmp_path: Path) -> None:
    key = secrets.token_urlsafe(24)  # 32 characters
    assert len(key.encode()) == 32
    assert Settings.from_env(_env(tmp_path, BANKQ_SECRET_KEY=key)).secret_key == key


@pytest.mark.parametrize("key", ["short", "x" * 31, "é" * 15])
def test_a_short_secret_key_refuses_to_start(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="BANKQ_SECRET_KEY is too short") as refused:
        Settings.from_env(_env(tmp_path, BANKQ_SECRET_KEY=key))
    assert "secrets.token_urlsafe" in str(refused.value)


@pytest.mark.parametrize(
    "key",
    [
        "dev-only-insecure-secret-key-change-me",  # the old docker-compose.yml default
        "change-me-to-something-long",  # the old README compose example
        " Dev-Only-Insecure-Secret-Key-Change-Me ",
    ],
)
def test_a_published_secret_key_refuses_to_start(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="BANKQ_SECRET_KEY is a published example key") as refused:
        Settings.from_env(_env(tmp_path, BANKQ_SECRET_KEY=key))
    assert "secrets.token_urlsafe" in str(refused.value)


def test_every_key_in_the_docs_and_compose_file_is_refused(tmp_path: Path) -> None:
    """Whatever example key the README or compose file shows is refused, so copying it cannot reach production."""
    root = Path(__file__).resolve().parents[2]
    shown: set[str] = set()
    for name in ("README.md", "docker-compose.yml", "Dockerfile", "Makefile"):
        text = (root / name).read_text()
        shown.update(re.findall(r"BANKQ_SECRET_KEY=([^\s\"'$`.][^\s\"'`]*)", text))
        shown.update(re.findall(r"\$\{BANKQ_SECRET_KEY:-([^}]*)\}", text))
    for key in shown:
        with pytest.raises(ValueError, match="BANKQ_SECRET_KEY"):
            Settings.from_env(_env(tmp_path, BANKQ_SECRET_KEY=key))


def test_the_keys_the_tests_run_with_are_accepted(tmp_path: Path) -> None:
    from tests.e2e.stack import E2E_SECRET_KEY

    for key in (os.environ["BANKQ_SECRET_KEY"], E2E_SECRET_KEY):
        assert Settings.from_env(_env(tmp_path, BANKQ_SECRET_KEY=key)).secret_key == key


def test_a_tampered_key_file_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("short\n")
    with pytest.raises(ValueError, match="read from .*secret_key.* is too short"):
        Settings.from_env(_env(tmp_path))


def test_numeric_settings(tmp_path: Path) -> None:
    settings = Settings.from_env(
        _env(tmp_path, BANKQ_POST_BATCH_SIZE="7", BANKQ_OUTBOX_RELAY_SECONDS="0.5", BANKQ_IDEMPOTENCY_TTL_SECONDS="")
    )
    assert settings.post_batch_size == 7
    assert settings.outbox_relay_seconds == 0.5
    assert settings.idempotency_ttl_seconds == 48 * 3600


def test_transfer_limits_default_to_none_and_must_be_positive_amounts(tmp_path: Path) -> None:
    from decimal import Decimal

    assert Settings.from_env(_env(tmp_path)).daily_limit is None
    settings = Settings.from_env(_env(tmp_path, BANKQ_DAILY_LIMIT="10000.00", BANKQ_MONTHLY_LIMIT="50000"))
    assert (settings.daily_limit, settings.monthly_limit) == (Decimal("10000.00"), Decimal("50000"))
    for bad in ("0", "-5", "lots", "NaN", "Infinity"):
        with pytest.raises(ValueError, match="BANKQ_DAILY_LIMIT"):
            Settings.from_env(_env(tmp_path, BANKQ_DAILY_LIMIT=bad))


def test_cors_origins_are_empty_by_default(tmp_path: Path) -> None:
    assert Settings.from_env(_env(tmp_path)).cors_origins == ()


def test_cors_origins_are_an_allow_list_of_exact_origins(tmp_path: Path) -> None:
    settings = Settings.from_env(
        _env(tmp_path, BANKQ_CORS_ORIGINS="http://localhost:5173, https://App.example.com/ http://localhost:5173")
    )
    assert settings.cors_origins == ("http://localhost:5173", "https://app.example.com")


@pytest.mark.parametrize("bad", ["*", "localhost:5173", "https://app.example.com/spa", "ftp://files.example"])
def test_cors_origins_refuse_what_no_browser_sends(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="BANKQ_CORS_ORIGINS"):
        Settings.from_env(_env(tmp_path, BANKQ_CORS_ORIGINS=bad))


def test_console_session_lifetime(tmp_path: Path) -> None:
    assert Settings.from_env(_env(tmp_path)).console_session_seconds == 8 * 3600
    assert Settings.from_env(_env(tmp_path, BANKQ_CONSOLE_SESSION_SECONDS="1800")).console_session_seconds == 1800
