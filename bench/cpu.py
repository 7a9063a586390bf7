"""CPU seconds spent by process trees (from /proc) over a measured window: where each item's cost went.

A group's total counts each live member's own CPU plus what it has reaped from exited children, so work done by
short-lived children (a database backend per connection) is kept once they exit."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its reaped children) of one live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / TICKS


def _all() -> dict[int, tuple[int, float]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            found[int(entry)] = stat
    return found


def _tree(root: int, table: dict[int, tuple[int, float]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    members, frontier = set(), [root] if root in table else []
    while frontier:
        pid = frontier.pop()
        members.add(pid)
        frontier.extend(c for c in children.get(pid, []) if c not in members)
    return members


def _own() -> float:
    times = os.times()
    return times.user + times.system


class CpuMeter:
    def __init__(self, roots: dict[str, Callable[[], list[int]]]) -> None:
        self.roots = roots
        self._before: dict[str, float] = {}
        self._own_before = 0.0

    def _totals(self) -> dict[str, float]:
        table = _all()
        return {name: sum(table[pid][1] for root in find() for pid in _tree(root, table))
                for name, find in self.roots.items()}

    def start(self) -> None:
        self._before = self._totals()
        self._own_before = _own()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group, plus `bench` for this process (the clients or producer, all threads)."""
        after = self._totals()
        spent = {name: round(max(0.0, after[name] - self._before.get(name, 0.0)), 3) for name in after}
        spent["bench"] = round(_own() - self._own_before, 3)
        return spent
