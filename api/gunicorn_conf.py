"""gunicorn settings for the API: `gunicorn -c python:api.gunicorn_conf --bind ... api.wsgi:app`.

Every answer a client can get is an RFC 9457 problem document, even those gunicorn gives before Flask sees the
request: the request line may be as long as gunicorn allows, so Flask answers an over-long URL (414, above
api.MAX_URL_BYTES), and the worker writes gunicorn's own refusals (a malformed request line, a URL past gunicorn's
limit, too large or too many headers) as problem documents instead of HTML pages.

Command-line options override these settings: pass no --worker-class, or the answers are HTML again."""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from api.errors import HTTP_CODES, PROBLEM, problem_body
from core import event_wakeups

worker_class = "api.gunicorn_conf.ProblemWorker"
# Threads for ordinary requests; open event streams get BANKQ_MAX_STREAMS threads of their own (ProblemWorker).
threads = 64
# gunicorn's maximum request line (8190 bytes): above the API's own URL limit, which Flask enforces with a problem.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

DETAILS = {
    400: "The request could not be parsed as HTTP/1.1.",
    403: "The request is forbidden.",
    414: f"The request line is longer than {limit_request_line} bytes.",
    417: "The Expect header cannot be met.",
    431: f"The request has more than {limit_request_fields} header fields, or one longer than "
         f"{limit_request_field_size} bytes.",
    500: "Something went wrong on our side.",
    501: "The transfer coding is not supported.",
}
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3}) ([^\r\n]*)\r\n")


class _ErrorPage:
    """Stands in for the client's socket while gunicorn writes its HTML error page, to learn the status."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.written = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.written += data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def child_exit(_server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # a dead worker's open streams leave the livesum gauge
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def stream_threads() -> int:
    """Threads each API process keeps for open event streams, on top of --threads: the stream cap."""
    from core.settings import Settings

    return Settings.from_env(os.environ).max_streams


class ProblemWorker(ThreadWorker):
    """gunicorn's threaded worker; its own error answers become problem documents. gunicorn still decides the
    status and logs the error as usual: only the body it writes is replaced.

    Its pool has --threads threads for requests plus one per event stream it may hold (api.streams caps those), and
    it accepts as many connections as both need: a thousand open streams leave ordinary requests their threads.
    A thread is started only when work needs it; an open stream's thread waits without using CPU."""

    def init_process(self) -> None:
        self._stream_threads = stream_threads()
        self.worker_connections = self.cfg.worker_connections + self._stream_threads
        super().init_process()

    def get_thread_pool(self) -> Any:
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(max_workers=self.cfg.threads + self._stream_threads)

    def handle_exit(self, sig: Any, frame: Any) -> None:
        # Open event streams would hold the graceful shutdown for its whole timeout: end them now (from a thread,
        # not the signal handler); clients reconnect with Last-Event-ID.
        threading.Thread(target=event_wakeups.close_all, daemon=True).start()
        super().handle_exit(sig, frame)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        page = _ErrorPage(client)
        super().handle_error(req, page, addr, exc)
        found = _STATUS_LINE.match(page.written)
        if found is None:  # nothing written (the client is gone) or a shape we do not know: leave it as it was
            if page.written:
                util.write_nonblock(client, page.written)
            return
        status, reason = int(found.group(1)), found.group(2).decode("latin-1")
        body = problem_body(status, HTTP_CODES.get(status, "error"), reason, DETAILS.get(status))
        util.write_nonblock(client, problem_response(status, reason, body))


def problem_response(status: int, reason: str, body: dict[str, Any]) -> bytes:
    content = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: {PROBLEM}\r\n"
        f"Content-Length: {len(content)}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n\r\n"
    )
    return head.encode("latin-1") + content
