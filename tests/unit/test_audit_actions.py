"""Every audit action core can write is listed in core.audit.ACTIONS (and so in the OpenAPI document)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from core.audit import ACTIONS, record

CORE = Path(__file__).resolve().parents[2] / "core"


def _action_argument(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "action":
            return keyword.value
    return call.args[2] if len(call.args) > 2 else None


def _audit_calls() -> list[tuple[str, ast.expr | None]]:
    """(where, action expression) of every `audit.record(...)` / `audit.queue_record(...)` (or the bare names inside
    core/audit.py)."""
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            names = ("record", "queue_record")
            named = isinstance(func, ast.Attribute) and func.attr in names and ast.unparse(func.value) == "audit"
            local = path.name == "audit.py" and isinstance(func, ast.Name) and func.id in names
            if named or local:
                found.append((f"{path.relative_to(CORE.parent)}:{node.lineno}", _action_argument(node)))
    return found


def _patterns(expr: ast.expr | None) -> list[str]:
    """The actions an expression can produce, as regular expressions: a literal is itself, an f-string's holes
    match any snake_case word, a conditional gives both branches. Anything else is refused."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [re.escape(expr.value)]
    if isinstance(expr, ast.JoinedStr):
        return ["".join(re.escape(part.value) if isinstance(part, ast.Constant) else "[a-z_]+" for part in expr.values)]
    if isinstance(expr, ast.IfExp):
        return _patterns(expr.body) + _patterns(expr.orelse)
    raise AssertionError(f"write the audit action as a literal, an f-string or a conditional: {ast.unparse(expr)}"
                         if expr is not None else "an audit.record call without an action")


CALLS = _audit_calls()


def test_core_writes_audit_events() -> None:
    assert len(CALLS) >= 20


@pytest.mark.parametrize(("where", "expr"), CALLS, ids=[where for where, _ in CALLS])
def test_every_action_core_writes_is_listed(where: str, expr: ast.expr | None) -> None:
    for pattern in _patterns(expr):
        assert any(re.fullmatch(pattern, action) for action in ACTIONS), (
            f"{where} writes audit action {pattern!r}, missing from core.audit.ACTIONS"
        )


def test_every_listed_action_is_written_somewhere() -> None:
    patterns = [p for _, expr in CALLS for p in _patterns(expr)]
    stale = [action for action in ACTIONS if not any(re.fullmatch(p, action) for p in patterns)]
    assert stale == []


def test_listed_actions_are_dotted_snake_case_with_a_meaning() -> None:
    for action, meaning in ACTIONS.items():
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", action) and len(action) <= 64 and meaning.endswith(".")


def test_an_unlisted_action_is_refused_when_written() -> None:
    session = Session()  # unbound: nothing is flushed, the event would only be added
    with pytest.raises(ValueError, match="core.audit.ACTIONS"):
        record(session, None, "account.renamed", "account:1")
    assert not session.new
    record(session, None, "account.opened", "account:1", currency="EUR")
    assert [event.action for event in session.new] == ["account.opened"]  # type: ignore[attr-defined]
