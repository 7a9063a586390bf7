"""Customers' reminders: once or repeating, sent on the chosen channel by beat."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.schemas_schedules import ReminderIn, ReminderListArgs, ReminderOut, ReminderPage
from api.security import bank, current_user
from core import reminders

blp = Blueprint("reminders", __name__, url_prefix="/api/v1/reminders", description="Reminders")
BEARER = [{"bearerAuth": []}]


@blp.post("")
@blp.doc(
    security=BEARER,
    description="`remind_at` in the future, at most two years ahead. Monthly reminders on "
    "the 29th-31st fall on a shorter month's last day. Each occurrence is sent once.",
)
@jwt_required()
@blp.arguments(ReminderIn)
@blp.response(201, ReminderOut)
def create_reminder(body: dict) -> tuple[dict, int]:
    return reminders.create_reminder(bank(), current_user(), reminders.NewReminder(**body)), 201


@blp.get("")
@blp.doc(security=BEARER, description="The caller's reminders, newest first.")
@jwt_required()
@blp.arguments(ReminderListArgs, location="query")
@blp.response(200, ReminderPage)
def list_reminders(args: dict) -> dict:
    return reminders.list_reminders(bank(), current_user(), limit=args["limit"], cursor=args["cursor"])


@blp.get("/<reminder_id>")
@blp.doc(security=BEARER)
@jwt_required()
@blp.response(200, ReminderOut)
def get_reminder(reminder_id: str) -> dict:
    return reminders.get_reminder(bank(), current_user(), reminder_id)


@blp.delete("/<reminder_id>")
@blp.doc(security=BEARER, description="Stops future occurrences. Another user's reminder is 404.")
@jwt_required()
@blp.response(204)
def delete_reminder(reminder_id: str) -> tuple[str, int]:
    reminders.cancel_reminder(bank(), current_user(), reminder_id)
    return "", 204
