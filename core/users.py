"""Users: registration, credentials, lockout, roles and the admin bootstrap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit
from core.clock import as_utc, isoformat, utcnow
from core.db import Database, Recorded
from core.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized, ValidationFailed
from core.limits import limits_of
from core.models import User
from core.security import check_password_strength, hash_password, verify_password
from core.settings import Settings
from core.time_zones import DEFAULT as DEFAULT_TIME_ZONE
from core.time_zones import check_time_zone

ROLES = ("customer", "teller", "admin")
STAFF = ("teller", "admin")
PROFILE_FIELDS = ("full_name", "phone", "time_zone", "monthly_statements")


@dataclass(frozen=True)
class NewUser:
    username: str
    email: str
    password: str | None  # None: set later through the password-reset flow (a walk-in customer)
    full_name: str
    date_of_birth: date | None = None
    phone: str | None = None
    role: str = "customer"
    time_zone: str = DEFAULT_TIME_ZONE


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "full_name": user.full_name,
        "date_of_birth": user.date_of_birth.isoformat() if user.date_of_birth else None,
        "phone": user.phone,
        "time_zone": user.time_zone,
        "monthly_statements": user.monthly_statements,
        "role": user.role,
        "kyc_status": user.kyc_status,
        "status": user.status,
        "created_at": isoformat(user.created_at),
    }


def me(db: Database, settings: Settings, user: User) -> dict[str, Any]:
    """The caller as GET /auth/me shows them: the user and, for a customer, their transfer limits. Read again here:
    the request's user may come from the process's copy of users, a moment behind a change made elsewhere (a
    profile edited or an identity verified through another API process)."""
    with db.transaction() as s:
        current = s.get(User, user.id) or user
        return {**user_view(current), "limits": limits_of(s, settings, current)}


def is_staff(user: User) -> bool:
    return user.role in STAFF


def check_birth_date(born: date | None) -> None:
    today = utcnow().date()
    if born is not None and not (today - timedelta(days=365 * 130) < born < today):
        raise ValidationFailed("Invalid date of birth.", errors={"date_of_birth": ["Must be a past date."]})


def insert_user(session: Session, new: NewUser) -> User:
    username, email = new.username.strip().lower(), new.email.strip().lower()
    if new.role not in ROLES:
        raise ValidationFailed("Unknown role.", errors={"role": [f"Must be one of {', '.join(ROLES)}."]})
    if new.password is not None:
        check_password_strength(new.password, username=username)
    check_birth_date(new.date_of_birth)
    time_zone = check_time_zone(new.time_zone)
    if session.scalar(select(User.id).where(User.username == username)):
        raise Conflict("That username is taken.", code="username_taken")
    if session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("That email address is already registered.", code="email_taken")
    user = User(
        username=username,
        email=email,
        password_hash=hash_password(new.password) if new.password is not None else None,
        full_name=new.full_name.strip(),
        date_of_birth=new.date_of_birth,
        phone=new.phone,
        time_zone=time_zone,
        role=new.role,
    )
    session.add(user)
    session.flush()
    return user


def register(db: Database, new: NewUser, *, actor_id: str | None = None) -> dict[str, Any]:
    try:
        with db.transaction() as s:
            user = insert_user(s, new)
            audit.record(s, actor_id or user.id, "user.created", f"user:{user.id}", role=user.role)
            return user_view(user)
    except IntegrityError as exc:
        raise Conflict("That username or email is already registered.", code="username_taken") from exc


def update_profile(db: Database, user_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The user's own profile: any of full_name, phone (None removes it), time_zone and monthly_statements."""
    unknown = sorted(set(changes) - set(PROFILE_FIELDS))
    if unknown:
        raise ValidationFailed("Not a profile field.", errors={name: ["Unknown field."] for name in unknown})
    if "time_zone" in changes:
        check_time_zone(changes["time_zone"])
    if "full_name" in changes and not (isinstance(changes["full_name"], str) and changes["full_name"].strip()):
        raise ValidationFailed("Invalid name.", errors={"full_name": ["Must not be blank."]})
    with db.transaction() as s:
        user = s.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound("No such user.")
        if "full_name" in changes:
            user.full_name = changes["full_name"].strip()
        if "phone" in changes:
            user.phone = changes["phone"]
        if "time_zone" in changes:
            user.time_zone = changes["time_zone"]
        if "monthly_statements" in changes:
            user.monthly_statements = bool(changes["monthly_statements"])
        if changes:
            audit.record(s, user.id, "user.profile_updated", f"user:{user.id}", fields=sorted(changes))
        return user_view(user)


def authenticate(db: Database, settings: Settings, username: str, password: str) -> User:
    """Check credentials with lockout. Unknown user and wrong password give the same answer."""
    now = utcnow()
    with db.transaction() as s:
        user = s.scalar(select(User).where(User.username == username.strip().lower()).with_for_update())
        if user is None:
            verify_password(None, password)
            raise Unauthorized("Invalid username or password.", code="invalid_credentials")
        if user.locked_until is not None and as_utc(user.locked_until) > now:
            wait = (as_utc(user.locked_until) - now).total_seconds()
            raise RateLimited(
                "Too many failed logins; try again later.", code="account_locked", retry_after=int(wait) + 1
            )
        if not verify_password(user.password_hash, password):
            user.failed_logins += 1
            if user.failed_logins >= settings.max_failed_logins:
                user.locked_until = now + timedelta(seconds=settings.lockout_seconds)
                user.failed_logins = 0
                audit.record(s, None, "user.locked", f"user:{user.id}")
            raise Recorded(Unauthorized("Invalid username or password.", code="invalid_credentials"))
        if user.status != "active":
            raise Forbidden(f"This account is {user.status}.", code=f"account_{user.status}")
        user.failed_logins = 0
        user.locked_until = None
    return user


def get_user(db: Database, user_id: str) -> User | None:
    with db.transaction() as s:
        return s.get(User, user_id)


def ensure_admin(db: Database, settings: Settings) -> None:
    """Make BANKQ_ADMIN_USERNAME/PASSWORD an active admin; idempotent, safe at every start."""
    if not (settings.admin_username and settings.admin_password):
        return
    username = settings.admin_username.strip().lower()
    check_password_strength(settings.admin_password, field="BANKQ_ADMIN_PASSWORD", username=username)
    with db.transaction() as s:
        user = s.scalar(select(User).where(User.username == username).with_for_update())
        if user is None:
            email = settings.admin_email or f"{username}@admin.bankq.invalid"
            s.add(
                User(
                    username=username,
                    email=email.lower(),
                    password_hash=hash_password(settings.admin_password),
                    full_name="Administrator",
                    role="admin",
                )
            )
            audit.record(s, None, "user.admin_bootstrapped", f"user:{username}")
            return
        user.role, user.status = "admin", "active"
        if not verify_password(user.password_hash, settings.admin_password):
            user.password_hash = hash_password(settings.admin_password)
            user.token_version += 1
