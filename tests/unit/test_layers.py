"""The layer rules of DESIGN.md, enforced by import-linter against `.importlinter`."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"


def _lint_imports() -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).parent / "lint-imports"
    return subprocess.run(
        [str(executable), "--config", str(CONFIG), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_cover_the_layer_rules() -> None:
    config = configparser.ConfigParser()
    config.read(CONFIG)
    assert config["importlinter"].getboolean("include_external_packages")
    assert set(config["importlinter"]["root_packages"].split()) == {"api", "core", "tasks", "beat"}
    contracts = {
        config[name]["source_modules"].strip(): set(config[name]["forbidden_modules"].split())
        for name in config.sections()
        if name.startswith("importlinter:contract:") and config[name]["type"] == "forbidden"
    }
    assert contracts["core"] >= {
        "flask",
        "flask_smorest",
        "flask_jwt_extended",
        "flask_limiter",
        "celery",
        "kombu",
        "marshmallow",
        "webargs",
        "api",
        "tasks",
        "beat",
    }
    assert contracts["api"] >= {"tasks.transfers", "tasks.maintenance", "tasks.runtime", "tasks.launcher"}
    assert contracts["beat"] >= {"api", "tasks"}
    assert contracts["api.console"] >= {"api.routes", "requests", "urllib3"}
    # the MRZ reader is a library: every other part of core (listed from the folder, so a new module cannot slip
    # past the contract) and the database, web and queue packages are out of its reach
    core_parts = {
        f"core.{path.stem}"
        for path in (ROOT / "core").iterdir()
        if path.stem not in ("__init__", "mrz", "data", "__pycache__") and (path.suffix == ".py" or path.is_dir())
    }
    assert contracts["core.mrz"] >= core_parts | {"sqlalchemy", "flask", "celery", "api", "tasks", "beat"}


def test_import_contracts_are_kept() -> None:
    result = _lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout
