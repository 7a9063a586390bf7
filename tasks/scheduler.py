"""Celery beat's scheduler on the real stack: RedBeat, made to ride out Redis outages and restarts.

RedBeat keeps the schedule and the one-beat lock in Redis and lets every Redis error escape its tick, which ends
the beat process. Here an error only costs ticks: beat logs one warning per outage, retries every few seconds,
and on recovery takes the lock again (or waits as the stand-by if another beat got it first) and writes the
schedule back if Redis came back empty. A tick run twice, or by two beats in the seconds around a restart, is
harmless: every tick is a claim that the database guards."""

from __future__ import annotations

import logging
from typing import Any

from redbeat.schedulers import LUA_EXTEND_TO_SCRIPT, RedBeatScheduler, get_redis
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)
RETRY_SECONDS = 5.0
OUTAGE = (RedisError, OSError)


class SteadyRedBeatScheduler(RedBeatScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._schedule_saved = False
        self._outage: str | None = None
        self._standby_logged = False
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        try:
            super().setup_schedule()
            self._schedule_saved = True
        except OUTAGE as exc:  # Redis down at start: written on the first tick that reaches it
            self._outage_began(exc)

    def tick(self, min: Any = min, **kwargs: Any) -> float:  # noqa: A002 - celery's signature
        try:
            if self.lock_key and not self._hold_lock():
                return self.max_interval  # another beat ticks; look again for the lock later
            self._restore_schedule()
            interval = super().tick(min=min, **kwargs)
        except OUTAGE as exc:
            self._outage_began(exc)
            return RETRY_SECONDS
        if self._outage:
            log.warning("beat: Redis answers again; ticking resumed")
            self._outage = None
        return float(interval)

    def _hold_lock(self) -> bool:
        """True while this beat holds the lock. A restarted Redis forgets the lock; take it again if free."""
        if self.lock is not None:
            try:
                self.lock.extend(int(self.lock_timeout))
                return True
            except LockError:
                log.warning("beat: lost the lock (Redis restarted or the lock expired); taking it again")
                self.lock = None
        client = get_redis(self.app)
        lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=1)
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)
        if not lock.acquire(blocking=False):
            if not self._standby_logged:
                log.info("beat: another beat holds the lock; standing by")
                self._standby_logged = True
            return False
        log.info("beat: acquired the lock")
        self.lock, self._standby_logged = lock, False
        return True

    def _restore_schedule(self) -> None:
        if self._schedule_saved and get_redis(self.app).exists(self.app.redbeat_conf.schedule_key):
            return
        if self._schedule_saved:
            log.warning("beat: the schedule is gone from Redis (restarted without persistence); writing it again")
        self._schedule_saved = False
        super().setup_schedule()
        self._schedule_saved = True

    def maybe_due(self, entry: Any, **kwargs: Any) -> float:
        is_due, next_time_to_run = entry.is_due()
        if is_due:
            log.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
            try:
                self.apply_async(entry, **kwargs)
            except Exception as exc:  # the broker is down: the next tick sends it again
                log.warning("beat: could not send %s: %s", entry.task, exc)
        return float(next_time_to_run)

    def close(self) -> None:
        try:
            super().close()
        except OUTAGE as exc:  # the lock expires by itself
            log.warning("beat: could not release the lock on shutdown: %s", exc)
            self.lock = None

    def _outage_began(self, exc: BaseException) -> None:
        if self._outage is None:
            self._outage = f"{type(exc).__name__}: {exc}"
            log.warning("beat: Redis unavailable (%s); retrying every %.0f s", self._outage, RETRY_SECONDS)
