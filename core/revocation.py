"""Revoked token ids. The database keeps every revocation. On PostgreSQL each API process keeps a copy of the
unexpired ones in memory, refreshed from the database four times a second (LocalRevocations), so the per-request
check costs no network round trip; while that copy is not fresh the check asks Redis, re-filled from the database
whenever it has not been synchronised for a while (so a Redis restart, which keeps nothing on disk, or an outage
never makes a revoked token valid again), and the database when Redis cannot answer."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.clock import as_utc, utcnow
from core.db import Database
from core.kept_current import Refresher
from core.models import RevokedToken

log = logging.getLogger(__name__)
SYNC_SECONDS = 30
# After Redis fails to answer, requests ask the database alone for this long instead of each waiting on Redis.
REDIS_PAUSE_SECONDS = 2.0
LOCAL_REFRESH_SECONDS = 0.25
# A local copy read longer ago than this is not trusted: checks ask the store until a refresh succeeds again. So a
# token revoked on any process stops working everywhere within this, whatever happens to the refreshing thread.
LOCAL_MAX_AGE_SECONDS = 0.75
# Each refresh re-reads revocations written this long before the last read's database time: a revocation's time is
# taken before it commits, and a short transaction commits well within this.
LOCAL_OVERLAP = timedelta(seconds=5)
LOCAL_RESYNC_SECONDS = 300.0


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

    def written_since(self, since: datetime | None) -> tuple[list[tuple[str, datetime]], datetime]:
        """Unexpired revocations written after `since` (all when None), and the database's time of the read."""
        with self.db.transaction() as s:
            now: datetime = s.execute(select(func.now())).scalar_one()
            query = select(RevokedToken.jti, RevokedToken.expires_at).where(RevokedToken.expires_at > now)
            if since is not None:
                query = query.where(RevokedToken.revoked_at > since)
            return [(jti, expires_at) for jti, expires_at in s.execute(query)], now

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


class LocalRevocations:
    """The unexpired revoked ids in this process's memory, kept current by one thread reading what the database
    gained since its last read (every LOCAL_REFRESH_SECONDS; everything again every LOCAL_RESYNC_SECONDS). A
    revocation made here is in the copy at once; one made by another process within a refresh. When the copy is
    older than LOCAL_MAX_AGE_SECONDS (the database slow or down, the thread stuck), each check asks `store`."""

    def __init__(
        self, store: RevocationStore, durable: DatabaseRevocations, *, refresh_seconds: float = LOCAL_REFRESH_SECONDS,
        max_age_seconds: float = LOCAL_MAX_AGE_SECONDS,
    ) -> None:
        self.store, self.durable = store, durable
        self._lock = threading.Lock()
        self._revoked: dict[str, datetime] = {}
        self._since: datetime | None = None
        self._full_at = -1.0e9
        self.refresher = Refresher("revocations", self.refresh, every=refresh_seconds, max_age=max_age_seconds,
                                   asked_instead="the store (Redis, else the database)")

    def revoke(self, jti: str, expires_at: datetime) -> None:
        self.store.revoke(jti, expires_at)
        with self._lock:
            self._revoked[jti] = expires_at

    def is_revoked(self, jti: str) -> bool:
        if self.refresher.fresh():
            return jti in self._revoked
        return self.store.is_revoked(jti)

    def refresh(self) -> None:
        since = self._since
        full = since is None or time.monotonic() - self._full_at > LOCAL_RESYNC_SECONDS
        rows, now = self.durable.written_since(None if full or since is None else since - LOCAL_OVERLAP)
        with self._lock:
            if full:
                kept = {jti: at for jti, at in self._revoked.items() if as_utc(at) > as_utc(now)}
                self._revoked = {**kept, **dict(rows)}
                self._full_at = time.monotonic()
            else:
                self._revoked.update(rows)
        self._since = now
