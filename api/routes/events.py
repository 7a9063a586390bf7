"""Job events pushed as Server-Sent Events: every job of the caller, or one job until it is terminal."""

from __future__ import annotations

import re

from flask import Response, current_app, request
from flask_jwt_extended import get_jwt, jwt_required

from api.blueprint import Blueprint
from api.errors import problem
from api.security import bank, current_user
from api.streams import LAST_EVENT_ID_MAX, TEXT_EVENT_STREAM, Streams, stream_response, token_check
from core.event_streams import follow, open_job_stream

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="Job events as Server-Sent Events")
BEARER = [{"bearerAuth": []}]
STREAM_BUSY_RETRY_AFTER = "5"
_DIGITS = re.compile(r"[0-9]{1,19}")

RESUME = [
    {"in": "header", "name": "Last-Event-ID", "required": False, "schema": {"type": "string", "pattern": "^[0-9]+$"},
     "description": "Replay every event after this id (the `id:` of the last event received), then stream live."},
    {"in": "query", "name": "last_event_id", "required": False, "schema": {"type": "integer", "minimum": 0},
     "description": "Same as the Last-Event-ID header, for clients that cannot set headers. The header wins."},
]
STREAM_DESCRIPTION = (
    "`text/event-stream`. Starts with a `retry:` hint; then each event is `id: <event id>`, `event: job`, "
    "`data: <the job JSON as GET /api/v1/jobs/{id} shows it>`, one per status change, oldest first. A comment "
    "line `: keep-alive` is sent after 15 s without an event. The stream ends when the token expires or is revoked: "
    "reconnect with a fresh token and Last-Event-ID to resume without loss."
)


def _problem(description: str) -> dict:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


STREAM_RESPONSES = {
    "200": {"description": STREAM_DESCRIPTION,
            "content": {TEXT_EVENT_STREAM: {"schema": {"type": "string"},
                                            "example": 'retry: 2000\n\nid: 7\nevent: job\ndata: {"id": "..."}\n\n'}}},
    "400": _problem("Last-Event-ID (or last_event_id) is not a non-negative integer (code `invalid_last_event_id`)."),
    "401": _problem("No token, or an invalid, expired or revoked one."),
    "503": {"description": "Too many open streams on this server (code `too_many_streams`); retry after "
                           "`Retry-After` seconds.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
}


def _streams() -> Streams:
    return current_app.extensions["bankq_streams"]  # type: ignore[no-any-return]


def _last_event_id() -> int | Response:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or raw == "":
        raw = request.args.get("last_event_id", "")
    if raw == "":
        return 0
    if not _DIGITS.fullmatch(raw) or int(raw) > LAST_EVENT_ID_MAX:
        return problem(400, "invalid_last_event_id", "Invalid Last-Event-ID",
                       "Last-Event-ID (or last_event_id) must be a non-negative integer: the id of an event.")
    return int(raw)


def _stream(owner_id: str, after_id: int, job_id: str | None = None, job_terminal: bool = False) -> Response:
    streams = _streams()
    if not streams.gate.acquire():
        return problem(503, "too_many_streams", "Too many streams",
                       "This server holds as many event streams as it may; retry shortly.",
                       headers={"Retry-After": STREAM_BUSY_RETRY_AFTER})
    authorised = token_check(bank(), get_jwt(), users=streams.users)
    items = follow(streams.tail, owner_id, after_id, authorised=authorised, job_id=job_id,
                   job_terminal=job_terminal)
    return stream_response(streams, items)


@blp.route("/events", methods=["GET"])
@blp.doc(security=BEARER, parameters=RESUME, responses=STREAM_RESPONSES,
         summary="Stream the events of all the caller's jobs",
         description="Open-ended. " + STREAM_DESCRIPTION)
@jwt_required()
def all_events() -> Response:
    after_id = _last_event_id()
    if isinstance(after_id, Response):
        return after_id
    return _stream(current_user().id, after_id)


@blp.route("/jobs/<job_id>/events", methods=["GET"])
@blp.doc(security=BEARER, parameters=RESUME, responses={**STREAM_RESPONSES,
                                                        "404": _problem("No such job, or not yours (code "
                                                                        "`job_not_found`).")},
         summary="Stream one job's events until it is terminal",
         description="Ends after the job's terminal event (succeeded, failed, cancelled); for a job already "
                     "terminal, replays and ends. Another user's job is 404 `job_not_found`. " + STREAM_DESCRIPTION)
@jwt_required()
def job_events(job_id: str) -> Response:
    after_id = _last_event_id()
    if isinstance(after_id, Response):
        return after_id
    job = open_job_stream(bank().db, current_user(), job_id)
    return _stream(job.owner_id, after_id, job_id, job.terminal)
