"""The README's `mail_mark` / `code_from_mail` shell helpers, run as written against .eml files bankq writes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from core.notifications.mail import FileMailer, build_message
from core.notifications.templates import render_email
from core.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
SH_BLOCKS = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)


def _helpers() -> str:
    [block] = [b for b in SH_BLOCKS if "code_from_mail() {" in b]
    return block[: block.index("PY\n}\n", block.index("code_from_mail() {")) + len("PY\n}\n")]


def _mail(data_dir: Path, template: str, code: str) -> None:
    settings = Settings(data_dir=data_dir, database_url="sqlite://", redis_url=None, broker_url="memory://",
                        secret_key="x")
    context = {"code": code, "expires_minutes": 10, "amount": "1200.00", "currency": "EUR", "payee": "Bob"}
    message = build_message(settings, rendered=render_email(template, context), recipient="alice@example.com",
                            message_id=f"<{uuid.uuid4().hex}@bankq>", template=template)
    FileMailer(settings).send(message, "alice@example.com")


def _shell(cwd: Path, script: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "BANKQ_DATA_DIR"}  # a reader's shell, as the README has it
    return subprocess.Popen(["bash", "-c", _helpers() + script], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    if shutil.which("bash") is None or shutil.which("python3") is None:
        pytest.skip("the README's snippets need bash and python3")
    return tmp_path


def test_the_code_comes_from_an_email_newer_than_the_request(folder: Path) -> None:
    data = folder / "var"
    _mail(data, "password_reset", "111111")  # an earlier run's email: its code is used up
    _mail(data, "transfer_confirmation", "333333")
    for expected in ("222222", "444444"):  # the snippet run twice
        waiting = _shell(folder, "mail_mark\ntouch marked\ncode_from_mail password_reset\n")
        while not (folder / "marked").exists():
            time.sleep(0.05)
        time.sleep(1.5)  # code_from_mail is already waiting when the request's email lands
        _mail(data, "transfer_confirmation", "555555")
        _mail(data, "password_reset", expected)
        out, err = waiting.communicate(timeout=30)
        (folder / "marked").unlink()
        assert (waiting.returncode, out.strip()) == (0, expected), err


def test_the_data_folder_follows_bankq_data_dir(folder: Path) -> None:
    data = folder / "elsewhere"
    script = f"export BANKQ_DATA_DIR={data}\nmail_mark\n" + "code_from_mail transfer_confirmation\n"
    waiting = _shell(folder, script)
    time.sleep(1.0)
    _mail(data, "transfer_confirmation", "654321")
    out, err = waiting.communicate(timeout=30)
    assert out.strip() == "654321", err


def test_code_from_mail_refuses_to_guess_without_a_mark(folder: Path) -> None:
    _mail(folder / "var", "password_reset", "111111")
    out, err = _shell(folder, "code_from_mail password_reset\n").communicate(timeout=30)
    assert out.strip() == "" and "call mail_mark before the request" in err


def test_every_snippet_marks_before_its_request() -> None:
    using = [b for b in SH_BLOCKS if "code_from_mail " in b.replace("code_from_mail() {", "")]
    assert len(using) >= 2
    for block in using:
        lines = block.splitlines()
        mark = lines.index("mail_mark")
        first_post = next(i for i, line in enumerate(lines) if "curl" in line and "-X POST" in line)
        assert mark < first_post, block
