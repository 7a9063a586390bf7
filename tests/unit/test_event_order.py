"""Which events read after a cursor may go out: up to the first gap the horizon does not cover."""

from __future__ import annotations

from core.event_order import final_prefix
from core.events import Event


def _events(*ids: int) -> list[Event]:
    return [Event(id=i, job_id=f"j{i}", status="queued", snapshot={}) for i in ids]


def ids(events: list[Event]) -> list[int]:
    return [e.id for e in events]


def test_consecutive_ids_go_out_without_the_horizon():
    assert ids(final_prefix(_events(11, 12, 13), 10, settled=0)) == [11, 12, 13]


def test_a_gap_above_the_horizon_stops_at_the_last_event_before_it():
    assert ids(final_prefix(_events(11, 13, 14), 10, settled=11)) == [11]
    assert ids(final_prefix(_events(12, 13), 10, settled=10)) == []


def test_a_gap_under_the_horizon_is_final_and_passed():
    assert ids(final_prefix(_events(11, 13, 14, 20), 10, settled=12)) == [11, 13, 14]
    assert ids(final_prefix(_events(11, 13, 14, 20), 10, settled=19)) == [11, 13, 14, 20]


def test_nothing_read_is_nothing_ready():
    assert final_prefix([], 10, settled=100) == []
