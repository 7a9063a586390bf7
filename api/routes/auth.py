"""Registration, login, refresh, logout and the current user."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.schemas import LoginIn, MeOut, ProfileIn, RegisterIn, TokensOut, UserOut
from api.schemas_otp import PasswordResetAccepted, PasswordResetConfirmIn, PasswordResetIn
from api.security import bank, current_user, issue_tokens, refreshed_access_token, revoke_current_tokens
from core import password_reset, users

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Sign-up and tokens")
BEARER = [{"bearerAuth": []}]


@blp.post("/register")
@blp.arguments(RegisterIn)
@blp.response(201, UserOut)
def register(body: dict) -> tuple[dict, int]:
    return users.register(bank().db, users.NewUser(**body)), 201


@blp.post("/login")
@blp.arguments(LoginIn)
@blp.response(200, TokensOut)
def login(body: dict) -> dict:
    user = users.authenticate(bank().db, bank().settings, body["username"], body["password"])
    return issue_tokens(user)


@blp.post("/refresh")
@blp.doc(security=BEARER, description="Send the refresh token as the bearer token.")
@jwt_required(refresh=True)
@blp.response(200, TokensOut)
def refresh() -> dict:
    return refreshed_access_token(current_user())


@blp.post("/logout")
@blp.doc(security=BEARER)
@jwt_required()
@blp.response(204)
def logout() -> tuple[str, int]:
    revoke_current_tokens()
    return "", 204


@blp.get("/me")
@blp.doc(
    security=BEARER,
    description="The caller. For a customer, `limits` lists their outgoing transfer limits per currency with what "
    "remains today (UTC day) and this calendar month; null means no limit. Staff: `limits` is empty.",
)
@jwt_required()
@blp.response(200, MeOut)
def me() -> dict:
    return users.me(bank().db, bank().settings, current_user())


@blp.patch("/me")
@blp.doc(
    security=BEARER,
    description="Change the caller's own profile: any of `full_name`, `phone` (null removes it), "
    "`time_zone` (an IANA name; 422 `validation_error` on `time_zone` for an unknown one) and "
    "`monthly_statements` (false opts out of the monthly statement email).",
)
@jwt_required()
@blp.arguments(ProfileIn)
@blp.response(200, UserOut)
def update_me(body: dict) -> dict:
    return users.update_profile(bank().db, current_user().id, body)


RESET_ACCEPTED = {"detail": "If the address belongs to an account, a reset code has been sent to it."}


@blp.post("/password-reset")
@blp.doc(description="Always 202 with the same body, whether or not the address has an account.")
@blp.arguments(PasswordResetIn)
@blp.response(202, PasswordResetAccepted)
def request_password_reset(body: dict) -> tuple[dict, int]:
    password_reset.request_reset(bank().db, bank().settings, body["email"])
    return RESET_ACCEPTED, 202


@blp.post("/password-reset/confirm")
@blp.doc(
    description="204, and every token issued before stops working. 422 `invalid_code` with `attempts_remaining` "
    "(also for an address without an account), 410 `expired`, 429 `too_many_attempts`, 422 `weak_password`."
)
@blp.arguments(PasswordResetConfirmIn)
@blp.response(204)
def confirm_password_reset(body: dict) -> tuple[str, int]:
    password_reset.confirm_reset(bank().db, bank().settings, body["email"], body["code"], body["new_password"])
    return "", 204
