"""The status of asynchronous requests."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.schemas import JobListArgs, JobOut, JobPage
from api.security import bank, current_user
from core import jobs

blp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs", description="Asynchronous jobs")
BEARER = [{"bearerAuth": []}]


@blp.get("")
@blp.doc(security=BEARER)
@jwt_required()
@blp.arguments(JobListArgs, location="query")
@blp.response(200, JobPage)
def list_jobs(args: dict) -> dict:
    return jobs.list_jobs(
        bank().db, current_user(), status=args["status"], kind=args["kind"], limit=args["limit"], cursor=args["cursor"]
    )


@blp.get("/<job_id>")
@blp.doc(security=BEARER, description="While the job is not terminal the answer carries Retry-After: 1.")
@jwt_required()
@blp.response(200, JobOut)
def get_job(job_id: str) -> tuple[dict, int, dict[str, str]]:
    job = jobs.get_job(bank().db, current_user(), job_id)
    headers = {} if job["status"] in jobs.TERMINAL else {"Retry-After": "1"}
    return job, 200, headers
