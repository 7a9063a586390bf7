"""Signing up, in and out, and resetting a password: the pages a person sees before they are signed in.

Sign-in goes through core.users.authenticate (the API's lockout) and the API's login rate limits (api.limits);
each POST is its own endpoint so only attempts count, never looking at the form."""

from __future__ import annotations

from flask import request

from api.console.blueprint import bank, blp, go, page, safe_next
from api.console.forms import load, submitted
from api.console.sessions import load_user, sign_in, sign_out
from api.schemas import LoginIn, RegisterIn
from api.schemas_otp import PasswordResetConfirmIn, PasswordResetIn
from core import password_reset, users
from core.errors import BankqError, Forbidden, RateLimited, Unauthorized

SIGN_UP_FIELDS = ("username", "email", "password", "full_name", "date_of_birth", "phone", "time_zone")


@blp.get("/signin")
def sign_in_form():  # type: ignore[no-untyped-def]
    if load_user() is not None:
        return go("home")
    return page("signin.html", next=safe_next(request.args.get("next")))


@blp.post("/signin")
def sign_in_submit():  # type: ignore[no-untyped-def]
    values = submitted(("username", "password"))
    target = safe_next(request.form.get("next"))
    try:
        body = load(LoginIn(), values)
        user = users.authenticate(bank().db, bank().settings, body["username"], body["password"])
    except (Unauthorized, Forbidden) as exc:
        return page("signin.html", status=exc.status, error=exc.detail, values=values, next=target)
    except RateLimited as exc:
        return page("signin.html", status=429, headers=exc.headers, error=exc.detail, values=values, next=target)
    except BankqError as exc:
        return page("signin.html", status=exc.status, error=exc.detail, errors=exc.errors, values=values,
                    next=target)
    sign_in(user)
    return go("home") if target is None else _redirect_to(target)


def _redirect_to(target: str):  # type: ignore[no-untyped-def]
    from flask import redirect

    return redirect(target, code=303)


@blp.post("/signout")
def sign_out_submit():  # type: ignore[no-untyped-def]
    sign_out()
    return go("sign_in_form")


@blp.get("/signup")
def sign_up_form():  # type: ignore[no-untyped-def]
    return page("signup.html", values={"time_zone": "UTC"})


@blp.post("/signup")
def sign_up_submit():  # type: ignore[no-untyped-def]
    values = submitted(SIGN_UP_FIELDS)
    try:
        body = load(RegisterIn(), values)
        users.register(bank().db, users.NewUser(**body))
        user = users.authenticate(bank().db, bank().settings, body["username"], body["password"])
    except BankqError as exc:
        return page("signup.html", status=exc.status, error=exc.detail, errors=exc.errors, values=values)
    sign_in(user)
    return go("home")


@blp.get("/password-reset")
def password_reset_form():  # type: ignore[no-untyped-def]
    return page("password_reset.html")


@blp.post("/password-reset")
def password_reset_submit():  # type: ignore[no-untyped-def]
    values = submitted(("email",))
    try:
        body = load(PasswordResetIn(), values)
    except BankqError as exc:
        return page("password_reset.html", status=exc.status, error=exc.detail, errors=exc.errors, values=values)
    password_reset.request_reset(bank().db, bank().settings, body["email"])
    # The same answer whether or not the address has an account (no user enumeration).
    return page("password_reset_confirm.html", status=202, values={"email": body["email"]}, sent=True)


@blp.get("/password-reset/confirm")
def password_reset_confirm_form():  # type: ignore[no-untyped-def]
    return page("password_reset_confirm.html", values={"email": request.args.get("email", "")})


@blp.post("/password-reset/confirm")
def password_reset_confirm_submit():  # type: ignore[no-untyped-def]
    values = submitted(("email", "code", "new_password"))
    try:
        body = load(PasswordResetConfirmIn(), values)
        password_reset.confirm_reset(bank().db, bank().settings, body["email"], body["code"], body["new_password"])
    except BankqError as exc:
        values.pop("new_password", None)
        return page("password_reset_confirm.html", status=exc.status, headers=exc.headers, error=exc.detail,
                    errors=exc.errors, values=values)
    sign_out()
    return page("signin.html", notice="Your password has been changed. Please sign in with the new one.")
