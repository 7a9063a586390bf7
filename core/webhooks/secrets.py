"""Signing secrets: made, sealed at rest, and used to sign exactly as Standard Webhooks verifies.

A secret is `whsec_` + base64 of 32 random bytes; the HMAC key is those bytes. The database holds it sealed with
Fernet under a key derived from BANKQ_SECRET_KEY, so a copy of the database alone cannot forge a webhook. Changing
BANKQ_SECRET_KEY therefore makes the stored secrets unreadable: rotate every endpoint's secret after such a change."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken
from standardwebhooks import Webhook as Signer

PREFIX = "whsec_"
SECRET_BYTES = 32
_PURPOSE = b"bankq webhook signing secrets v1"


class SecretUnreadable(Exception):
    """The sealed secret was written under another BANKQ_SECRET_KEY."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _fernet(secret_key: str) -> Fernet:
    key = hmac.new(secret_key.encode(), _PURPOSE, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, secret: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def unseal(secret_key: str, sealed: str) -> str:
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("the webhook secret was sealed under another BANKQ_SECRET_KEY") from exc


def signature_header(secrets_in_use: Iterable[str], message_id: str, timestamp: int, body: str) -> str:
    """`v1,<sig>` per secret, space-separated: the receiver accepts the message if any one verifies."""
    at = datetime.fromtimestamp(timestamp, UTC)
    return " ".join(Signer(secret).sign(message_id, at, body) for secret in secrets_in_use)
