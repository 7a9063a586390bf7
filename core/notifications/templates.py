"""Message templates: which exist, what context each needs, and rendering (Jinja2, HTML autoescaped)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from core.errors import ValidationFailed

FOLDER = Path(__file__).with_name("templates")
PURPOSES = {
    "transfer": "confirm a transfer",
    "login": "sign in",
    "password_reset": "reset your password",
    "verify_email": "confirm your email address",
    "verify_phone": "confirm your phone number",
}


@dataclass(frozen=True)
class Template:
    subject: str
    requires: tuple[str, ...]


TEMPLATES: dict[str, Template] = {
    "otp_code": Template("Your bankq security code", ("code", "purpose", "expires_minutes")),
    "password_reset": Template("Reset your bankq password", ("code", "expires_minutes")),
    "transfer_posted": Template("Your transfer is complete", ("amount", "currency", "transfer_id")),
    "transfer_failed": Template("Your transfer could not be completed", ("amount", "currency", "transfer_id")),
    # Several transfers of one customer finished since the last sweep: one email lists them all.
    "transfer_receipts": Template("Your transfers", ("transfers",)),
    "transfer_confirmation": Template("Confirm your transfer", ("code", "amount", "currency", "payee")),
    "kyc_outcome": Template("Your identity check", ("status",)),
    "reminder": Template("A reminder from bankq", ("message",)),
    "kyc_reminder": Template("Finish verifying your identity", ("days",)),
    "webhook_disabled": Template("Your bankq webhook was disabled", ("url", "reason")),
    "monthly_statement": Template("Your bankq statement is ready", ("account_number", "month", "download_path")),
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None = None


_env = Environment(
    loader=FileSystemLoader(FOLDER),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_env.globals["purposes"] = PURPOSES


def template_for(name: str, context: dict[str, Any]) -> Template:
    """The template, once the context has everything it needs; a caller's mistake fails in the caller's request."""
    template = TEMPLATES.get(name)
    if template is None:
        raise ValidationFailed(
            "Unknown notification template.",
            code="unknown_template",
            errors={"template": [f"Must be one of {', '.join(sorted(TEMPLATES))}."]},
        )
    missing = [key for key in template.requires if key not in context]
    if missing:
        raise ValidationFailed(
            "The notification context is incomplete.",
            code="missing_context",
            errors={"context": [f"Missing {', '.join(missing)}."]},
        )
    return template


def render_email(name: str, context: dict[str, Any]) -> Rendered:
    template = template_for(name, context)
    return Rendered(
        template.subject,
        _env.get_template(f"{name}.txt").render(context),
        _env.get_template(f"{name}.html").render(context, subject=template.subject),
    )


def render_sms(name: str, context: dict[str, Any]) -> Rendered:
    template = template_for(name, context)
    return Rendered(template.subject, _env.get_template(f"{name}.sms.txt").render(context).strip())
