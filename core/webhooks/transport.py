"""One POST to a webhook endpoint: to the checked address only, redirects not followed, bounded in time and size.

The standard library's http.client is used with the socket opened to the address `addresses.resolve` checked;
the Host header and (for https) the TLS server name and certificate check use the URL's host name."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from functools import cache

from core.webhooks.addresses import Refused, Target, parse, resolve

CONNECT_SECONDS = 2.0
TOTAL_SECONDS = 15.0
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ERROR = 300


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


class _Pinned(http.client.HTTPConnection):
    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), CONNECT_SECONDS)
        self.sock.settimeout(self.timeout)


@cache
def tls_context() -> ssl.SSLContext:
    """The system's trusted certificate authorities, with hostname checks: built once per process and shared by
    every attempt (wrapping sockets with one context from many threads is safe). Building it loads the whole CA
    bundle: 21-22 ms of CPU each time, measured, which every https attempt used to pay."""
    return ssl.create_default_context()


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=tls_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), CONNECT_SECONDS)
        raw.settimeout(self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, headers: dict[str, str], body: bytes, *, allow_private: bool,
         total_seconds: float = TOTAL_SECONDS) -> Answer:
    started = time.monotonic()

    def answer(status: int | None, error: str | None) -> Answer:
        return Answer(status, error[:MAX_ERROR] if error else None, int((time.monotonic() - started) * 1000))

    try:
        target = parse(url)
        address = resolve(target, allow_private=allow_private)
    except Refused as exc:
        return answer(None, str(exc))
    except Exception as exc:  # a URL saved before a rule changed
        return answer(None, f"invalid URL: {exc}")
    remaining = max(0.1, total_seconds - (time.monotonic() - started))
    kind = _PinnedTLS if target.scheme == "https" else _Pinned
    conn = kind(target, address, remaining)
    # The socket timeout bounds each read; this bounds them all, so a trickling answer cannot hold the worker.
    watchdog = threading.Timer(remaining, _cut, args=(conn,))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(MAX_RESPONSE_BYTES)  # read at most this much; the rest is dropped with the connection
        status = response.status
    except TimeoutError:
        return answer(None, f"timed out after {total_seconds:g} s" if time.monotonic() - started > CONNECT_SECONDS
                      else f"connect timed out after {CONNECT_SECONDS:g} s")
    except ssl.SSLError as exc:
        return answer(None, f"TLS error: {exc}")
    except ConnectionRefusedError:
        return answer(None, f"connection refused by {address}:{target.port}")
    except (OSError, http.client.HTTPException) as exc:
        late = time.monotonic() - started >= total_seconds
        return answer(None, f"timed out after {total_seconds:g} s" if late else f"{type(exc).__name__}: {exc}")
    finally:
        watchdog.cancel()
        conn.close()
    if 300 <= status < 400:
        return answer(status, f"redirect ({status}) not followed: webhook URLs must answer directly")
    if not 200 <= status < 300:
        return answer(status, f"endpoint answered {status}")
    return answer(status, None)


def _cut(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
