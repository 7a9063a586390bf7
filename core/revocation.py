"""Revoked token ids: Redis on the real stack (with TTL), the database on the embedded default."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.clock import as_utc, utcnow
from core.db import Database
from core.models import RevokedToken


class RevocationStore(Protocol):
    def revoke(self, jti: str, expires_at: datetime) -> None: ...
    def is_revoked(self, jti: str) -> bool: ...


class DatabaseRevocations:
    def __init__(self, db: Database) -> None:
        self.db = db

    def revoke(self, jti: str, expires_at: datetime) -> None:
        insert = pg_insert if self.db.is_postgres else sqlite_insert
        with self.db.transaction() as s:
            s.execute(insert(RevokedToken).values(jti=jti, expires_at=expires_at).on_conflict_do_nothing())
            s.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow() - timedelta(hours=1)))

    def is_revoked(self, jti: str) -> bool:
        with self.db.transaction() as s:
            return s.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None


class RedisRevocations:
    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)

    def revoke(self, jti: str, expires_at: datetime) -> None:
        ttl = max(1, int((as_utc(expires_at) - utcnow()).total_seconds()) + 60)
        self.redis.set(f"bankq:revoked:{jti}", b"1", ex=ttl)

    def is_revoked(self, jti: str) -> bool:
        return bool(self.redis.exists(f"bankq:revoked:{jti}"))
