"""A newcomer clones the repository into a folder named bankq: the app must still build, from beside it or inside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A tool run from the checkout's parent may import the folder itself as the namespace package "bankq" (pytest's
# rootdir, a debugger, `python -m bankq...`); Flask must not go looking for the app's files there.
BUILD_APP = """
import importlib, sys
if "--namespace" in sys.argv:
    importlib.import_module("bankq")
from api import create_app
app = create_app()
answer = app.test_client().get("/health")
print(app.root_path)
print(answer.status_code, answer.get_json())
"""


def _working_tree(destination: Path) -> None:
    """Copy the working tree as it is (committed or not) so the test checks the code under test."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    folder = tmp_path_factory.mktemp("clone") / "bankq"
    _working_tree(folder)
    return folder


@pytest.mark.parametrize(
    ("where", "namespace"),
    [("parent", False), ("parent", True), ("inside", False)],
    ids=["from-parent", "from-parent-bankq-imported-as-namespace", "from-inside"],
)
def test_app_builds_in_a_checkout_named_bankq(checkout: Path, tmp_path: Path, where: str, namespace: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        PYTHONPATH=str(checkout),
        BANKQ_DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'bankq.db'}",
    )
    cwd = checkout.parent if where == "parent" else checkout
    args = [sys.executable, "-c", BUILD_APP] + (["--namespace"] if namespace else [])
    run = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    root_path, answer = run.stdout.strip().splitlines()[-2:]
    assert Path(root_path) == checkout / "api"  # the code under test, not the repository the tests run from
    assert answer == "200 {'status': 'ok'}"
