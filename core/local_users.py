"""The users an API process has looked up, kept in its memory for the check every authenticated request makes of
its token's user (exists, active, token version), so that check costs no round trip to PostgreSQL.

How the copy stays true. On PostgreSQL a trigger stamps every inserted or updated users row with the id of the
transaction that wrote it (`users.changed_xid`, migration 0028). Four times a second one thread asks, in a single
statement, for the ids of the rows stamped at or after the previous read's horizon and for the new horizon: the
oldest transaction still running at that read (`pg_snapshot_xmin`). Every transaction below a horizon had ended
when it was taken, so it was seen by that read or an earlier one; every transaction a read could not see yet is at
or above its horizon, so the next read sees it. No change is missed however long a transaction runs, and none is
counted on a clock. The thread drops those users from the copy; the next request for one reads it again.

A user read by a request while a change was committing could otherwise be put in the copy after the drop meant to
remove it: drops are numbered, a request notes the number before its own read, and a user dropped since is not kept
(the next request reads it again). Changes made by this process drop its copies once their transaction has ended
(`Database.users_changed`), so its own requests see them at once; another process's change is seen within a
refresh. While the thread's last successful read started more than MAX_AGE_SECONDS ago (the database slow or down,
the thread stuck), every request reads its user from the database, as it did without the copy. So a suspended user,
or a password change that logs a user out everywhere, takes effect on every API process within a second, as a
revoked token does (core.revocation). A refusal is never made on the copy alone: a caller about to refuse a user
on what the copy says (the token's user suspended or logged out, an identity not verified) reads them again first,
so a change that lets a user in (a verification or a password change a moment ago on another process) is never
refused for want of a refresh.

On SQLite (the embedded default) the database is a local file, so `StoredUsers` reads it on every request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import text

from core.db import Database, detached
from core.kept_current import Refresher
from core.models import User

REFRESH_SECONDS = 0.25
MAX_AGE_SECONDS = 0.75
CAPACITY = 100_000  # users kept; past it the copy starts again from empty (each costs a read again)
# A request's read is kept only if at most this many drops were made while it was being made; drops are remembered
# for as long.
KEPT_DROPS = 64

# The horizon and the users changed at or after the last one, read in one statement (so from one snapshot). On the
# first read (:since NULL) only the horizon: nothing is in the copy yet.
_CHANGED_SINCE = text(
    "SELECT h.horizon, u.id, u.changed_xid FROM "
    "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon) AS h "
    "LEFT JOIN users AS u ON u.changed_xid >= CAST(:since AS bigint)"
)


class Users(Protocol):
    def get(self, user_id: str, *, fresh: bool = False) -> User | None: ...
    def forget(self, user_ids: set[str]) -> None: ...


def confirmed(users: Users, user: User | None, user_id: str, passes: Callable[[User | None], bool]) -> User | None:
    """`user` (the request's, maybe from the copy) when it passes the check; otherwise the user as stored now, so
    nobody is refused on a copy that has not yet seen the change letting them in. The caller checks the result."""
    if passes(user):
        return user
    return users.get(user_id, fresh=True)


class StoredUsers:
    """Every look-up reads the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, user_id: str, *, fresh: bool = False) -> User | None:
        return self.db.get(User, user_id)

    def forget(self, user_ids: set[str]) -> None:
        pass


class LocalUsers:
    """See the module's docstring. `get` returns a new detached instance each time: callers may not share one."""

    def __init__(self, db: Database, *, refresh_seconds: float = REFRESH_SECONDS,
                 max_age_seconds: float = MAX_AGE_SECONDS, capacity: int = CAPACITY) -> None:
        self.db = db
        self.capacity = capacity
        self.reads = 0  # users read from the database, for tests and measurements
        self._lock = threading.Lock()
        self._rows: dict[str, Any] = {}
        self._drops = 0  # drops made (by a refresh or by this process's own change)
        self._dropped: dict[str, int] = {}  # user id -> the number of the last drop of it
        self._horizon: int | None = None
        # The change each user was last dropped for. While a transaction anywhere on the server stays open the
        # horizon stays behind it, and each read returns the changes since again: one already acted on is not.
        self._acted_on: dict[str, int] = {}
        self.refresher = Refresher("users", self.refresh, every=refresh_seconds, max_age=max_age_seconds)

    def get(self, user_id: str, *, fresh: bool = False) -> User | None:
        """The user as the copy has them, or read now: when the copy is not trusted, or with `fresh` (a caller about
        to refuse the user on what the copy says confirms it first: the copy may not have the change yet that
        would let them in, such as an identity verified or a password changed a moment ago by another process)."""
        if not self.refresher.fresh():
            self.reads += 1
            return self.db.get(User, user_id)
        row = None if fresh else self._rows.get(user_id)
        if row is None:
            number = self._drops
            row = self.db.row(User, user_id)
            self.reads += 1
            if row is None:
                return None  # no such user: nothing to keep (a token names only users that existed)
            self._keep(user_id, row, number)
        return detached(User, row)

    def _keep(self, user_id: str, row: Any, number: int) -> None:
        with self._lock:
            if self._drops - number > KEPT_DROPS or self._dropped.get(user_id, -1) > number:
                return  # the user was dropped after we noted the number: our row may predate the change
            if len(self._rows) >= self.capacity:
                self._rows.clear()
            self._rows[user_id] = row

    def forget(self, user_ids: set[str]) -> None:
        """This process changed these users (or tried to): its copies go now."""
        with self._lock:
            self._drop(user_ids)

    def _drop(self, user_ids: Any) -> None:
        """(Holding the lock.) The change that these users' drop stands for is visible to every read from now on."""
        self._drops += 1
        for user_id in user_ids:
            self._rows.pop(user_id, None)
            self._dropped[user_id] = self._drops
        oldest = self._drops - KEPT_DROPS
        if len(self._dropped) > 4 * KEPT_DROPS:
            self._dropped = {user_id: mark for user_id, mark in self._dropped.items() if mark >= oldest}

    def refresh(self) -> None:
        with self.db.statement() as conn:
            rows = conn.execute(_CHANGED_SINCE, {"since": self._horizon}).all()
        horizon = rows[0].horizon
        new = [row for row in rows if row.id is not None and self._acted_on.get(row.id) != row.changed_xid]
        if new:
            with self._lock:
                self._drop(row.id for row in new)
        self._acted_on.update((row.id, row.changed_xid) for row in new)
        if len(self._acted_on) > len(rows):  # forget changes that are below the horizon: no read returns them again
            self._acted_on = {user_id: xid for user_id, xid in self._acted_on.items() if xid >= horizon}
        self._horizon = horizon
