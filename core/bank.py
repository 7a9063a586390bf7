"""The wiring of one process: settings, database, revocation store, event wake-ups. Entry points build one Bank."""

from __future__ import annotations

from core.db import Database
from core.event_wakeups import Doorbell
from core.local_users import LocalUsers, StoredUsers, Users
from core.revocation import DatabaseRevocations, LocalRevocations, RedisRevocations, RevocationStore
from core.settings import Settings


class Bank:
    def __init__(self, settings: Settings | None = None, *, pool_size: int = 10) -> None:
        self.settings = settings or Settings.from_env()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(self.settings.database_url, pool_size=pool_size)
        # Readers of job_events (event streams, the webhook dispatcher) hear of a commit through Redis; without
        # Redis they poll.
        self.doorbell = Doorbell(self.settings.redis_url) if self.settings.redis_url else None
        self.db.waker = self.doorbell.ring if self.doorbell else None
        durable = DatabaseRevocations(self.db)
        store: RevocationStore = (
            RedisRevocations(self.settings.redis_url, durable) if self.settings.redis_url else durable
        )
        # On SQLite the database is a local file: its check costs no network round trip to save.
        self.revocations: RevocationStore = LocalRevocations(store, durable) if self.db.is_postgres else store
        # The token's user, checked on every authenticated request: from memory on PostgreSQL, as revocations are.
        self.users: Users = LocalUsers(self.db) if self.db.is_postgres else StoredUsers(self.db)
        self.db.users_changed = self.users.forget
