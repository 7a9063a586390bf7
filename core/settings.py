"""One settings object, read from the environment once."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path


def _bool(value: str | None, default: bool, name: str = "setting") -> bool:
    """Unknown spellings are an error: a typo must not silently turn a safety check off."""
    if value is None or value.strip() == "":
        return default
    word = value.strip().lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (use true or false)")


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return int(raw) if raw else default


def _float_or_none(raw: str | None) -> float | None:
    return float(raw) if raw else None


def _limit(env: dict[str, str], name: str) -> Decimal | None:
    """A limit in major units; unset or empty: no limit."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{name}={raw!r} is not a positive amount in major units (e.g. 10000.00)")
    return value


def _origins(raw: str | None) -> tuple[str, ...]:
    """BANKQ_CORS_ORIGINS: comma- or space-separated origins (scheme://host[:port]), each exactly as a browser
    sends it in the Origin header. A path, a wildcard or a missing scheme is an error, not a silent mismatch."""
    origins = []
    for item in (raw or "").replace(",", " ").split():
        origin = item.rstrip("/")
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", origin):
            raise ValueError(
                f"BANKQ_CORS_ORIGINS: {item!r} is not an origin such as http://localhost:5173 (scheme, host and "
                "optional port; no path, no wildcard)"
            )
        origins.append(origin.lower())
    return tuple(dict.fromkeys(origins))


MIN_SECRET_KEY_BYTES = 32
GENERATE_SECRET_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
# Keys printed in this repository (compose file, README) at some point: anyone can sign tokens with them.
PUBLISHED_SECRET_KEYS = frozenset(
    {
        "dev-only-insecure-secret-key-change-me",
        "change-me-to-something-long",
    }
)


def check_secret_key(key: str, source: str = "BANKQ_SECRET_KEY") -> str:
    """A key that signs every token must be long and not one anybody can read in our docs."""
    if key.strip().lower() in PUBLISHED_SECRET_KEYS:
        raise ValueError(
            f"{source} is a published example key, so anyone could sign tokens with it; "
            f"set it to a long random value, e.g. {GENERATE_SECRET_KEY}"
        )
    if len(key.encode()) < MIN_SECRET_KEY_BYTES:
        raise ValueError(
            f"{source} is too short ({len(key.encode())} bytes, at least {MIN_SECRET_KEY_BYTES} needed); "
            f"set it to a long random value, e.g. {GENERATE_SECRET_KEY}"
        )
    return key


def _secret(data_dir: Path, env: dict[str, str]) -> str:
    """Production sets BANKQ_SECRET_KEY; the embedded default keeps a generated one in the data folder."""
    if env.get("BANKQ_SECRET_KEY"):
        return check_secret_key(env["BANKQ_SECRET_KEY"])
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        staged = data_dir / f".secret_key.{os.getpid()}"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
        try:
            os.link(staged, path)  # atomic: the first process to start wins, the others read its key
        except FileExistsError:
            pass
        finally:
            staged.unlink()
    return check_secret_key(path.read_text().strip(), f"BANKQ_SECRET_KEY (read from {path})")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str | None
    broker_url: str
    secret_key: str
    require_kyc: bool = True
    confirmation_threshold: Decimal = Decimal("1000.00")
    daily_limit: Decimal | None = None  # outgoing, per customer and currency, in major units; None: no limit
    monthly_limit: Decimal | None = None
    loan_grace_days: int = 5  # an instalment unpaid this many days after its due date is charged the late fee
    loan_reminder_days: int = 3  # the borrower is reminded this many days before each due date
    access_token_seconds: int = 900
    refresh_token_seconds: int = 30 * 24 * 3600
    max_failed_logins: int = 5
    lockout_seconds: int = 900
    idempotency_ttl_seconds: int = 48 * 3600
    redrive_after_seconds: int = 60
    outbox_relay_seconds: float = 5.0
    post_batch_size: int = 100
    admin_username: str | None = None
    admin_password: str | None = None
    admin_email: str | None = None
    max_request_bytes: int = 1024 * 1024
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "bankq <no-reply@bankq.invalid>"
    smtp_starttls: bool = False
    # An email's attachment (the monthly statement's PDF) is at most this many bytes; 0: nothing is attached.
    mail_attachment_max_bytes: int = 10_000_000
    sms_provider_url: str | None = None
    sms_provider_token: str | None = None
    otp_pepper: str = ""
    kyc_reminder_days: int = 3
    max_streams: int = 1000
    stream_keepalive_seconds: float = 15.0
    stream_poll_seconds: float | None = None  # None: 1.5 s with Redis wake-ups, 0.5 s without
    stream_retry_ms: int = 2000
    # Webhook URLs may point at loopback, private, link-local and metadata addresses (tests, a private network).
    webhook_allow_private: bool = False
    # Browser apps on these origins may call the JSON API (CORS); empty: none, no Access-Control-* header is sent.
    cors_origins: tuple[str, ...] = ()
    console_session_seconds: int = 8 * 3600  # a console sign-in lasts this long, then the person signs in again

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def broker_folder(self) -> Path:
        return self.data_dir / "broker"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env.get("BANKQ_DATA_DIR") or "var").resolve()
        database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'bankq.db'}"
        if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
            database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
        redis_url = env.get("REDIS_URL") or None
        broker_url = env.get("CELERY_BROKER_URL") or redis_url or "filesystem://"
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            redis_url=redis_url,
            broker_url=broker_url,
            secret_key=_secret(data_dir, env),
            require_kyc=_bool(env.get("BANKQ_REQUIRE_KYC"), True, "BANKQ_REQUIRE_KYC"),
            confirmation_threshold=Decimal(env.get("BANKQ_CONFIRMATION_THRESHOLD") or "1000.00"),
            daily_limit=_limit(env, "BANKQ_DAILY_LIMIT"),
            monthly_limit=_limit(env, "BANKQ_MONTHLY_LIMIT"),
            loan_grace_days=max(0, _int(env, "BANKQ_LOAN_GRACE_DAYS", 5)),
            loan_reminder_days=max(0, _int(env, "BANKQ_LOAN_REMINDER_DAYS", 3)),
            access_token_seconds=_int(env, "BANKQ_ACCESS_TOKEN_SECONDS", 900),
            refresh_token_seconds=_int(env, "BANKQ_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600),
            max_failed_logins=_int(env, "BANKQ_MAX_FAILED_LOGINS", 5),
            lockout_seconds=_int(env, "BANKQ_LOCKOUT_SECONDS", 900),
            idempotency_ttl_seconds=_int(env, "BANKQ_IDEMPOTENCY_TTL_SECONDS", 48 * 3600),
            redrive_after_seconds=_int(env, "BANKQ_REDRIVE_AFTER_SECONDS", 60),
            outbox_relay_seconds=float(env.get("BANKQ_OUTBOX_RELAY_SECONDS") or 5.0),
            post_batch_size=_int(env, "BANKQ_POST_BATCH_SIZE", 100),
            admin_username=env.get("BANKQ_ADMIN_USERNAME") or None,
            admin_password=env.get("BANKQ_ADMIN_PASSWORD") or None,
            admin_email=env.get("BANKQ_ADMIN_EMAIL") or None,
            max_request_bytes=_int(env, "BANKQ_MAX_REQUEST_BYTES", 1024 * 1024),
            smtp_host=env.get("SMTP_HOST") or None,
            smtp_port=_int(env, "SMTP_PORT", 25),
            smtp_username=env.get("SMTP_USERNAME") or None,
            smtp_password=env.get("SMTP_PASSWORD") or None,
            smtp_from=env.get("SMTP_FROM") or "bankq <no-reply@bankq.invalid>",
            smtp_starttls=_bool(env.get("SMTP_STARTTLS"), False, "SMTP_STARTTLS"),
            mail_attachment_max_bytes=max(0, _int(env, "BANKQ_MAIL_ATTACHMENT_MAX_BYTES", 10_000_000)),
            sms_provider_url=env.get("SMS_PROVIDER_URL") or None,
            sms_provider_token=env.get("SMS_PROVIDER_TOKEN") or None,
            otp_pepper=env.get("BANKQ_OTP_PEPPER") or "",
            kyc_reminder_days=max(1, _int(env, "BANKQ_KYC_REMINDER_DAYS", 3)),
            max_streams=max(0, _int(env, "BANKQ_MAX_STREAMS", 1000)),
            stream_keepalive_seconds=float(env.get("BANKQ_STREAM_KEEPALIVE_SECONDS") or 15.0),
            stream_poll_seconds=_float_or_none(env.get("BANKQ_STREAM_POLL_SECONDS")),
            stream_retry_ms=_int(env, "BANKQ_STREAM_RETRY_MS", 2000),
            webhook_allow_private=_bool(env.get("BANKQ_WEBHOOK_ALLOW_PRIVATE"), False, "BANKQ_WEBHOOK_ALLOW_PRIVATE"),
            cors_origins=_origins(env.get("BANKQ_CORS_ORIGINS")),
            console_session_seconds=max(60, _int(env, "BANKQ_CONSOLE_SESSION_SECONDS", 8 * 3600)),
        )
