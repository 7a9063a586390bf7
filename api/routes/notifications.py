"""What was sent to the caller: email, SMS and in-app messages (never their bodies or codes)."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.schemas_notifications import NotificationListArgs, NotificationPage
from api.security import bank, current_user
from core import notifications

blp = Blueprint(
    "notifications", __name__, url_prefix="/api/v1/notifications", description="Messages sent to the caller"
)
BEARER = [{"bearerAuth": []}]


@blp.get("")
@blp.doc(security=BEARER, description="Newest first. A message being retried shows as queued.")
@jwt_required()
@blp.arguments(NotificationListArgs, location="query")
@blp.response(200, NotificationPage)
def list_notifications(args: dict) -> dict:
    return notifications.list_notifications(bank(), current_user(), limit=args["limit"], cursor=args["cursor"])
