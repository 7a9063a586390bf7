"""A job's page: its status live from the job's event stream (Server-Sent Events of rendered HTML), with polling
of the status fragment as the fallback when the stream cannot be held open, until the job is terminal."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Response, current_app, render_template, request, stream_with_context

from api.console.blueprint import bank, blp, current, page
from api.console.sessions import claims, signed_in
from api.streams import LAST_EVENT_ID_MAX, TEXT_EVENT_STREAM, StreamBody, Streams, token_check
from core import jobs, transfers
from core.errors import BankqError
from core.event_streams import follow, open_job_stream
from core.events import Event
from core.kyc import documents

STOP_POLLING = 286  # htmx stops polling an element whose answer has this status
_DIGITS = re.compile(r"[0-9]{1,19}")


def _resource_id(job: dict[str, Any]) -> str | None:
    link = (job.get("links") or {}).get("resource")
    return link.rsplit("/", 1)[1] if link else None


def _details(job: dict[str, Any]) -> dict[str, Any]:
    """What the status fragment shows beside the status: the transfer, or the document and its reasons."""
    resource_id = _resource_id(job)
    try:
        if job["kind"] == "kyc" and resource_id:
            return {"document": documents.get_document(bank(), current(), resource_id)}
        if job["kind"] in ("transfer", "deposit", "withdrawal", "reversal") and resource_id:
            return {"transfer": transfers.get_transfer(bank(), current(), resource_id)}
    except BankqError:  # visible as a job, not as its resource (an admin looking at someone's job)
        pass
    return {}


def status_fragment(job: dict[str, Any], via: str, **context: Any) -> str:
    return render_template("console/_job_status.html", job=job, via=via, terminal=job["status"] in jobs.TERMINAL,
                           **_details(job), **context)


def job_page(job_id: str, status: int = 200, **context: Any) -> Response:
    job = jobs.get_job(bank().db, current(), job_id)
    return page("job.html", status=status, job=job, terminal=job["status"] in jobs.TERMINAL,
                fragment=status_fragment(job, "page", **context))


@blp.get("/jobs/<job_id>")
@signed_in
def job(job_id: str):  # type: ignore[no-untyped-def]
    return job_page(job_id)


@blp.get("/jobs/<job_id>/status")
@signed_in
def job_status(job_id: str):  # type: ignore[no-untyped-def]
    shown = jobs.get_job(bank().db, current(), job_id)
    terminal = shown["status"] in jobs.TERMINAL
    return Response(status_fragment(shown, "poll"), status=STOP_POLLING if terminal else 200, mimetype="text/html",
                    headers={} if terminal else {"Retry-After": "1"})


def _last_event_id() -> int:
    raw = request.headers.get("Last-Event-ID") or ""
    return int(raw) if _DIGITS.fullmatch(raw) and int(raw) <= LAST_EVENT_ID_MAX else 0


def html_frames(retry_ms: int, items: Iterable[Event | None]) -> Iterator[bytes]:
    """`event: ready` at once (a page that does not get it, say behind a proxy that buffers, polls instead), each
    job event as the status fragment (`event: job`), then `event: done` after the terminal one, which closes the
    page's EventSource (sse-close) instead of letting it reconnect to a finished job."""
    yield f"retry: {retry_ms}\n\nevent: ready\ndata: ready\n\n".encode()  # the page polls if this never arrives
    for item in items:
        if item is None:
            yield b": keep-alive\n\n"
            continue
        html = status_fragment(item.job, "stream")
        data = "".join(f"data: {line}\n" for line in html.splitlines() if line.strip())
        yield f"id: {item.id}\nevent: job\n{data}\n".encode()
        if item.status in jobs.TERMINAL:
            yield b"event: done\ndata: done\n\n"


@blp.get("/jobs/<job_id>/events")
@signed_in
def job_events(job_id: str):  # type: ignore[no-untyped-def]
    stream = open_job_stream(bank().db, current(), job_id)
    streams: Streams = current_app.extensions["bankq_streams"]
    if not streams.gate.acquire():
        # The page falls back to polling the status fragment.
        return Response("", status=503, mimetype="text/plain", headers={"Retry-After": "5"})
    authorised = token_check(bank(), claims() or {}, users=streams.users)
    items = follow(streams.tail, stream.owner_id, _last_event_id(), authorised=authorised,
                   job_id=job_id, job_terminal=stream.terminal)
    body = StreamBody(stream_with_context(html_frames(streams.retry_ms, items)), streams.gate.release)
    response = Response(body, mimetype=TEXT_EVENT_STREAM, direct_passthrough=True)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
