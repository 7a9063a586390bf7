"""The refresher behind the processes' in-memory copies (revocations, users): trusted only while a refresh that
succeeded started recently, failures and recovery logged once each."""

from __future__ import annotations

import logging
import time

import pytest

from core.kept_current import Refresher


def test_fresh_only_within_max_age_of_a_successful_refresh_and_each_change_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = [True]

    def refresh() -> None:
        if failing[0]:
            raise ConnectionError("database away")

    refresher = Refresher("things", refresh, every=3600, max_age=0.5, asked_instead="the store")
    refresher._thread = object()  # type: ignore[assignment]  # no thread: the test drives each refresh
    with caplog.at_level(logging.WARNING, logger="core.kept_current"):
        assert not refresher.run_once() and not refresher.run_once()
        assert not refresher.fresh()
        failing[0] = False
        assert refresher.run_once() and refresher.fresh()
        time.sleep(0.6)
        assert not refresher.fresh()  # nothing refreshed since: not trusted
        assert refresher.run_once() and refresher.fresh()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["things: cannot refresh the local copy (database away); checks ask the store meanwhile",
                        "things: the local copy is current again"]


def test_the_first_check_starts_one_thread_that_keeps_refreshing() -> None:
    calls: list[float] = []
    refresher = Refresher("counted", lambda: calls.append(time.monotonic()), every=0.02, max_age=1.0)
    refresher.fresh()  # starts the thread
    deadline = time.monotonic() + 2
    while len(calls) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert refresher.fresh()
    thread = refresher._thread
    refresher.fresh()
    assert refresher._thread is thread and thread is not None
