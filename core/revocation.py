"""Revoked token ids. The database keeps every revocation; on the real stack Redis answers the per-request
check, re-filled from the database whenever it has not been synchronised for a while (so a Redis restart,
which keeps nothing on disk, or an outage never makes a revoked token valid again)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.clock import as_utc, utcnow
from core.db import Database
from core.models import RevokedToken

log = logging.getLogger(__name__)
SYNC_SECONDS = 30
# After Redis fails to answer, requests ask the database alone for this long instead of each waiting on Redis.
REDIS_PAUSE_SECONDS = 2.0


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

    def unexpired(self) -> list[tuple[str, datetime]]:
        with self.db.transaction() as s:
            return [
                (r.jti, r.expires_at) for r in s.scalars(select(RevokedToken).where(RevokedToken.expires_at > utcnow()))
            ]


class RedisRevocations:
    """Redis in front of the database. Falls back to the database whenever Redis cannot answer for sure."""

    def __init__(self, url: str, durable: DatabaseRevocations) -> None:
        import redis

        self.errors = (redis.RedisError, OSError)
        self.redis = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self.durable = durable
        self._paused_until = 0.0
        self._outage = False

    def _redis_failed(self) -> None:
        self._paused_until = time.monotonic() + REDIS_PAUSE_SECONDS
        if not self._outage:
            self._outage = True
            log.warning("Redis unavailable for revocation checks; the database answers them until it is back")

    @staticmethod
    def _key(jti: str) -> str:
        return f"bankq:revoked:{jti}"

    def _cache(self, jti: str, expires_at: datetime) -> None:
        ttl = max(1, int((as_utc(expires_at) - utcnow()).total_seconds()) + 60)
        self.redis.set(self._key(jti), b"1", ex=ttl)

    def revoke(self, jti: str, expires_at: datetime) -> None:
        self.durable.revoke(jti, expires_at)
        try:
            self._cache(jti, expires_at)
        except self.errors:
            log.warning("revocation of %s not cached in Redis; the database answers until the next sync", jti)

    def is_revoked(self, jti: str) -> bool:
        if time.monotonic() < self._paused_until:
            return self.durable.is_revoked(jti)
        try:
            pipe = self.redis.pipeline()
            pipe.exists(self._key(jti))
            pipe.exists("bankq:revoked:synced")
            revoked, synced = pipe.execute()
            if self._outage:
                self._outage = False
                log.warning("Redis answers revocation checks again")
            if revoked:
                return True
            if synced:
                return False
            self.sync()
        except self.errors:
            self._redis_failed()
        return self.durable.is_revoked(jti)

    def sync(self) -> None:
        for jti, expires_at in self.durable.unexpired():
            self._cache(jti, expires_at)
        self.redis.set("bankq:revoked:synced", b"1", ex=SYNC_SECONDS)
