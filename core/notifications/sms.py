"""SMS through a provider adapter: an HTTP provider (JSON + bearer token), or files when none is configured."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Protocol

from core.notifications.errors import DeliveryDeferred, DeliveryFailed
from core.notifications.mail import safe_name, write_atomically
from core.settings import Settings

log = logging.getLogger(__name__)
HTTP_TIMEOUT_SECONDS = 10


class SmsProvider(Protocol):
    def send(self, *, to: str, text: str, message_id: str) -> None: ...


class HttpSmsProvider:
    """POST {to, text, id} to the provider. 5xx, 429, refusals and timeouts are deferrals; other 4xx are final.
    `id` is the stable message id: a provider that deduplicates on it sends a retried message once."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url, self.token = url, token

    def send(self, *, to: str, text: str, message_id: str) -> None:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = json.dumps({"to": to, "text": text, "id": message_id}).encode()
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            # The provider's body may quote the text, and the text may hold a code: keep only the status.
            detail = f"SMS provider answered HTTP {exc.code}"
            exc.close()
            if exc.code >= 500 or exc.code in (408, 429):
                raise DeliveryDeferred(detail) from None
            raise DeliveryFailed(detail) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryDeferred(f"SMS provider unreachable: {type(reason).__name__}: {reason}") from None


class FileSmsProvider:
    """No provider configured (the embedded default): each message lands as data_dir/sms/<message id>.txt."""

    def __init__(self, settings: Settings) -> None:
        self.folder = settings.data_dir / "sms"

    def send(self, *, to: str, text: str, message_id: str) -> None:
        path = self.folder / f"{safe_name(message_id)}.txt"
        write_atomically(path, f"To: {to}\nId: {message_id}\n\n{text}\n".encode())
        log.info("sms to %s %s written to %s", to, message_id, path)


def sms_provider_for(settings: Settings) -> SmsProvider:
    if settings.sms_provider_url:
        return HttpSmsProvider(settings.sms_provider_url, settings.sms_provider_token)
    return FileSmsProvider(settings)
