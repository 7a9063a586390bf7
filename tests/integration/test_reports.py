"""Statements: requested as jobs, rendered once by a worker, downloaded by the owner only; the monthly statement."""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pypdfium2 as pdfium
import pytest
from sqlalchemy import func, select, text

from core.bank import Bank
from core.clock import clock
from core.models import Account, AuditEvent, Notification, Report
from core.money import format_minor
from core.notifications import send_notification
from core.reports import monthly, statements, worker
from core.reports.render import Period, entry_batches, totals_for
from core.settings import Settings
from core.setup import prepare
from core.transfers import MovementRequest, post_transfer_jobs, request_movement
from tests.integration.test_notifications import Mailbox, configured
from tests.servers import free_port
from tests.support import _staff, auth_headers, make_user, open_account, run_concurrently


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


def move(bank, kind: str, account_id: str, minor: int, description: str = "") -> None:
    accepted = request_movement(
        bank,
        _staff(bank),
        MovementRequest(
            kind=kind,
            account_id=account_id,
            amount=format_minor(minor, "EUR"),
            currency="EUR",
            description=description or None,
        ),
        idempotency_key=uuid.uuid4().hex,
        body={},
    )
    assert post_transfer_jobs(bank.db, accepted.body["id"], batch_size=1).posted == [accepted.body["id"]]


def history(bank):
    """An account with lines before, inside and after October 2026; the clock ends on 2026-11-05."""
    owner = make_user(bank)
    clock.freeze(at("2026-09-20"))
    account = open_account(bank, owner, balance_minor=10_000)  # 100.00 before the period
    clock.freeze(at("2026-10-01", 0))
    move(bank, "deposit", account, 2_550, "Salary, October")
    clock.freeze(at("2026-10-15"))
    move(bank, "withdrawal", account, 1_234, '=HYPERLINK("http://evil")')
    clock.freeze(at("2026-10-31", 23))
    move(bank, "deposit", account, 5, "Interest")
    clock.freeze(at("2026-11-02"))
    move(bank, "withdrawal", account, 1_000, "After the period")
    clock.freeze(at("2026-11-05"))
    return owner, account


def request(client, headers, account_id, fmt, first="2026-10-01", last="2026-10-31", key=None):
    return client.post(
        f"/api/v1/accounts/{account_id}/statements",
        json={"from": first, "to": last, "format": fmt},
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


def report_id_of(job: dict) -> str:
    return job["links"]["resource"].rsplit("/", 1)[1]


def test_csv_round_trips_and_its_totals_are_the_ledgers(bank, client):
    owner, account = history(bank)
    headers = auth_headers(client, owner)
    accepted = request(client, headers, account, "csv", key="k1")
    assert accepted.status_code == 202, accepted.get_json()
    job = accepted.get_json()
    assert accepted.headers["Location"] == f"/api/v1/jobs/{job['id']}" and job["kind"] == "statement"
    assert job["links"]["resource"].startswith("/api/v1/reports/")
    replay = request(client, headers, account, "csv", key="k1")
    assert replay.get_json()["id"] == job["id"] and replay.headers["Idempotent-Replayed"] == "true"

    report_id = report_id_of(job)
    early = client.get(f"/api/v1/reports/{report_id}/download", headers=headers)
    assert early.status_code == 409 and early.get_json()["code"] == "report_not_ready"
    assert client.get(f"/api/v1/reports/{report_id}", headers=headers).get_json()["status"] == "processing"

    assert worker.process_report(bank, job["id"]) == "ready"
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=headers).get_json()["status"] == "succeeded"
    report = client.get(f"/api/v1/reports/{report_id}", headers=headers).get_json()
    assert {k: report[k] for k in ("status", "format", "account_id", "from", "to")} == {
        "status": "ready",
        "format": "csv",
        "account_id": account,
        "from": "2026-10-01",
        "to": "2026-10-31",
    }
    assert report["summary"] == {
        "currency": "EUR",
        "entries": 3,
        "opening_balance": "100.00",
        "total_in": "25.55",
        "total_out": "12.34",
        "closing_balance": "113.21",
    }

    download = client.get(f"/api/v1/reports/{report_id}/download", headers=headers)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "statement-" in download.headers["Content-Disposition"] and ".csv" in download.headers["Content-Disposition"]
    assert len(download.data) == report["size"]
    rows = list(csv.DictReader(io.StringIO(download.data.decode())))

    entries = client.get(f"/api/v1/accounts/{account}/entries?limit=500", headers=headers).get_json()["items"]
    in_october = [e for e in reversed(entries) if e["posted_at"].startswith("2026-10")]
    assert [r["entry_id"] for r in rows] == [e["id"] for e in in_october]
    for row, entry in zip(rows, in_october, strict=True):
        assert (row["posted_at"], row["amount"], row["balance_after"], row["transfer_id"]) == (
            entry["posted_at"],
            entry["amount"],
            entry["balance_after"],
            entry["transfer_id"],
        )
    assert rows[1]["description"] == '\'=HYPERLINK("http://evil")'  # never a formula in a spreadsheet
    opening = Decimal(rows[0]["balance_after"]) - Decimal(rows[0]["amount"])
    total = sum(Decimal(r["amount"]) for r in rows)
    assert opening == Decimal("100.00") and opening + total == Decimal(rows[-1]["balance_after"]) == Decimal("113.21")


def test_pdf_opens_shows_a_page_and_its_totals_add_up(bank, client):
    owner, account = history(bank)
    headers = auth_headers(client, owner)
    job = request(client, headers, account, "pdf").get_json()
    assert worker.process_report(bank, job["id"]) == "ready"
    download = client.get(f"/api/v1/reports/{report_id_of(job)}/download", headers=headers)
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.data.startswith(b"%PDF-")

    pdf = pdfium.PdfDocument(download.data)
    page = pdf[0]
    image = page.render(scale=1).to_pil().convert("L")
    dark = sum(1 for px in image.getdata() if px < 128)
    assert dark > 500  # ink on the page, not a blank sheet
    words = page.get_textpage().get_text_range()

    def amount(label: str) -> Decimal:
        found = re.search(rf"{label}: ([0-9.,-]+) EUR", words)
        assert found, (label, words)
        return Decimal(found.group(1))

    with bank.db.transaction() as s:
        number = s.get(Account, account).number
    assert f"Account number: {number}" in words and owner.full_name in words
    assert "Period: 2026-10-01 to 2026-10-31" in words
    opening, money_in, money_out, closing = (
        amount(x) for x in ("Opening balance", "Money in", "Money out", "Closing balance")
    )
    assert (opening, money_in, money_out) == (Decimal("100.00"), Decimal("25.55"), Decimal("12.34"))
    assert opening + money_in - money_out == closing == Decimal("113.21")
    # ...which is the balance after the last line of October
    with bank.db.transaction() as s:
        end_balance = s.scalar(
            text(
                "SELECT balance_after FROM entries WHERE account_id = :a AND posted_at < :end ORDER BY id DESC LIMIT 1"
            ),
            {"a": account, "end": at("2026-11-01", 0)},
        )
    assert Decimal(format_minor(end_balance, "EUR")) == closing


def test_reports_are_their_owners_only(bank, client):
    owner, account = history(bank)
    other, teller = make_user(bank), make_user(bank, role="teller")
    headers, theirs, staff = auth_headers(client, owner), auth_headers(client, other), auth_headers(client, teller)
    job = request(client, headers, account, "csv").get_json()
    report_id = report_id_of(job)
    worker.process_report(bank, job["id"])
    for path in (f"/api/v1/reports/{report_id}", f"/api/v1/reports/{report_id}/download", "/api/v1/reports/nope"):
        refused = client.get(path, headers=theirs)
        assert refused.status_code == 404 and refused.get_json()["code"] == "report_not_found"
    assert request(client, theirs, account, "csv").status_code == 404  # another's account
    assert client.get(f"/api/v1/reports/{report_id}/download", headers=staff).status_code == 200
    assert request(client, staff, account, "pdf").status_code == 202


def test_bad_requests_write_nothing(bank, client):
    owner, account = history(bank)
    headers = auth_headers(client, owner)
    cases = [
        ({"from": "2026-10-02", "to": "2026-10-01", "format": "csv"}, "validation_error"),
        ({"from": "2025-01-01", "to": "2026-10-31", "format": "csv"}, "period_too_long"),
        ({"from": "2026-11-01", "to": "2026-11-06", "format": "csv"}, "validation_error"),  # not over yet
        ({"from": "2026-10-01", "to": "2026-10-31", "format": "xlsx"}, "validation_error"),
        ({"from": "2026-10-01T00:00:00Z", "to": "2026-10-31", "format": "csv"}, "validation_error"),
    ]
    for body, code in cases:
        answer = client.post(
            f"/api/v1/accounts/{account}/statements",
            json=body,
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert answer.status_code == 422 and answer.get_json()["code"] == code, (body, answer.get_json())
    no_key = client.post(
        f"/api/v1/accounts/{account}/statements",
        json={"from": "2026-10-01", "to": "2026-10-31", "format": "csv"},
        headers=headers,
    )
    assert no_key.status_code == 400 and no_key.get_json()["code"] == "idempotency_key_required"
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Report)) == 0


def test_duplicate_deliveries_render_once(bank, client):
    owner, account = history(bank)
    job = request(client, auth_headers(client, owner), account, "pdf").get_json()
    outcomes = run_concurrently(lambda: worker.process_report(bank, job["id"]), n=3)
    assert sorted(outcomes, key=str) == [None, None, "ready"]
    assert worker.process_report(bank, job["id"]) is None
    files = list((bank.settings.data_dir / "reports").iterdir())
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    assert oct((bank.settings.data_dir / "reports").stat().st_mode & 0o777) == "0o700"
    with bank.db.transaction() as s:
        report = s.scalar(select(Report))
        assert report.stored_name == files[0].name and report.size_bytes == files[0].stat().st_size
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "report.ready")) == 1


def seed_deposits(bank, account_id: str, n: int) -> None:
    """n balanced postings straight into the ledger (cash account on the other side), in one statement each."""
    with bank.db.transaction() as s:
        staff_id = _staff(bank).id
        cash = s.scalar(select(Account).where(Account.type == "cash", Account.currency == "EUR"))
        params = {"a": account_id, "c": cash.id, "cb": cash.balance, "n": n, "u": staff_id, "at": at("2026-10-10")}
        s.execute(
            text(
                "CREATE TEMP TABLE seed ON COMMIT DROP AS SELECT i, gen_random_uuid()::text AS t, "
                "100 * (i % 5 + 1) AS amount FROM generate_series(1, :n) AS i"
            ),
            params,
        )
        s.execute(
            text(
                "INSERT INTO transfers (id, job_id, kind, source_account_id, destination_account_id, amount, "
                "currency, status, requested_by, created_at, posted_at) "
                "SELECT t, t, 'deposit', :c, :a, amount, 'EUR', 'posted', :u, :at, :at FROM seed"
            ),
            params,
        )
        s.execute(
            text(
                "INSERT INTO entries (transfer_id, account_id, currency, amount, balance_after, description, "
                "posted_at) SELECT t, acct, 'EUR', amt, bal, 'seeded ' || i, :at + i * interval '1 second' FROM ("
                " SELECT i, t, :a AS acct, amount AS amt, sum(amount) OVER (ORDER BY i) AS bal FROM seed"
                " UNION ALL SELECT i, t, :c, -amount, :cb - sum(amount) OVER (ORDER BY i) FROM seed) AS x"
                " ORDER BY i, amt"
            ),
            params,
        )
        total = s.scalar(text("SELECT sum(amount) FROM seed"))
        s.execute(text("UPDATE accounts SET balance = balance + :t WHERE id = :a"), {"t": total, "a": account_id})
        s.execute(text("UPDATE accounts SET balance = balance - :t WHERE id = :c"), {"t": total, "c": cash.id})


def test_large_statements_stream_in_batches(bank, client):
    owner = make_user(bank)
    clock.freeze(at("2026-10-01"))
    account = open_account(bank, owner)
    seed_deposits(bank, account, 3000)
    clock.freeze(at("2026-11-03"))
    period = Period(date(2026, 10, 1), date(2026, 10, 31))
    with bank.db.transaction() as s:
        totals = totals_for(s, account, period)
        sizes, cursors = [], []
        for batch in entry_batches(s, account, period, totals, 250):
            sizes.append(len(batch))
            cursors.append(s.scalar(text("SELECT count(*) FROM pg_cursors WHERE statement LIKE '%CURSOR FOR SELECT "
                                         "entries.id%'")))
    assert totals.entry_count == 3000 and sizes == [250] * 12
    assert min(cursors) >= 1  # a server-side cursor is open throughout: PostgreSQL hands rows over as asked

    headers = auth_headers(client, owner)
    csv_job, pdf_job = (request(client, headers, account, fmt).get_json() for fmt in ("csv", "pdf"))
    assert worker.process_report(bank, csv_job["id"], batch_size=97) == "ready"
    assert worker.process_report(bank, pdf_job["id"], batch_size=97) == "ready"
    download = client.get(f"/api/v1/reports/{report_id_of(csv_job)}/download", headers=headers, buffered=False)
    assert download.is_streamed  # the file is sent in chunks as it is read, never loaded whole
    chunks = [len(chunk) for chunk in download.response]
    assert len(chunks) > 10 and max(chunks) <= 64 * 1024 and sum(chunks) == int(download.headers["Content-Length"])
    download.close()
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"/api/v1/reports/{report_id_of(csv_job)}/download", headers=headers).data.decode())
        )
    )
    assert len(rows) == 3000 and rows[-1]["balance_after"] == format_minor(totals.closing, "EUR")
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal(format_minor(totals.total_in, "EUR"))
    pdf = pdfium.PdfDocument(client.get(f"/api/v1/reports/{report_id_of(pdf_job)}/download", headers=headers).data)
    assert len(pdf) > 50  # every line is on a page
    assert "seeded 3000" in pdf[len(pdf) - 1].get_textpage().get_text_range()


def monthly_notices(bank, user_id: str) -> int:
    with bank.db.transaction() as s:
        return s.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.template == "monthly_statement")
        )


def render_all(bank) -> None:
    with bank.db.transaction() as s:
        job_ids = list(s.scalars(select(Report.job_id).where(Report.status == "processing")))
    for job_id in job_ids:
        assert worker.process_report(bank, job_id) == "ready"


def test_monthly_statement_once_per_account_and_month_and_opt_out(bank, client):
    clock.freeze(at("2026-10-03"))
    keen, shy, suspended = make_user(bank), make_user(bank), make_user(bank)
    keen_accounts = [open_account(bank, keen, balance_minor=500), open_account(bank, keen)]
    open_account(bank, shy, balance_minor=700)
    open_account(bank, suspended)
    optout = client.patch("/api/v1/auth/me", json={"monthly_statements": False}, headers=auth_headers(client, shy))
    assert optout.status_code == 200 and optout.get_json()["monthly_statements"] is False
    with bank.db.transaction() as s:
        s.execute(text("UPDATE users SET status = 'suspended' WHERE id = :u"), {"u": suspended.id})

    clock.freeze(at("2026-10-20"))
    assert monthly.queue_monthly_statements(bank) == 0  # not early in a month
    clock.freeze(at("2026-11-01", 0))
    assert sum(run_concurrently(lambda: monthly.queue_monthly_statements(bank), n=2)) == 2
    assert monthly.queue_monthly_statements(bank) == 0
    render_all(bank)
    clock.freeze(at("2026-11-04"))
    assert monthly.queue_monthly_statements(bank) == 0

    with bank.db.transaction() as s:
        reports = list(s.scalars(select(Report).order_by(Report.account_id)))
    assert sorted(r.account_id for r in reports) == sorted(keen_accounts)
    assert all(
        (r.format, r.period_from, r.period_to, r.monthly, r.status)
        == ("pdf", date(2026, 10, 1), date(2026, 10, 31), True, "ready")
        for r in reports
    )
    assert monthly_notices(bank, keen.id) == 2 and monthly_notices(bank, shy.id) == 0
    assert monthly_notices(bank, suspended.id) == 0
    with bank.db.transaction() as s:
        contexts = [
            n.context for n in s.scalars(select(Notification).where(Notification.template == "monthly_statement"))
        ]
    assert {c["download_path"] for c in contexts} == {f"/api/v1/reports/{r.id}/download" for r in reports}
    assert all(c["month"] == "October 2026" for c in contexts)

    # The month after: one more each, never a second for October.
    clock.freeze(datetime(2026, 12, 1, 3, tzinfo=UTC))
    assert monthly.queue_monthly_statements(bank) == 2
    render_all(bank)
    assert monthly_notices(bank, keen.id) == 4


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a free port."""
    box = Mailbox(free_port())
    box.start()
    try:
        yield box
    finally:
        box.stop()


def test_the_monthly_email_carries_the_pdf_once_over_real_smtp(bank, client, mailbox: Mailbox):
    owner, account = history(bank)
    clock.freeze(at("2026-10-20"))
    bulky = open_account(bank, owner, balance_minor=100)  # its PDF will be over the size bound
    clock.freeze(at("2026-11-05"))
    assert sum(run_concurrently(lambda: monthly.queue_monthly_statements(bank), n=2)) == 2
    with bank.db.transaction() as s:
        jobs_by_account = dict(s.execute(select(Report.account_id, Report.job_id)).all())
    assert worker.process_report(bank, jobs_by_account[account]) == "ready"
    with configured(bank, mail_attachment_max_bytes=100):
        assert worker.process_report(bank, jobs_by_account[bulky]) == "ready"
    with bank.db.transaction() as s:
        notices = {n.context["account_number"]: n.id for n in s.scalars(
            select(Notification).where(Notification.template == "monthly_statement"))}
        number, bulky_number = s.get(Account, account).number, s.get(Account, bulky).number
        report_id = s.scalar(select(Report.id).where(Report.account_id == account))

    with configured(bank, smtp_host="127.0.0.1", smtp_port=mailbox.port):
        for notice in notices.values():  # each message delivered twice at once, then once more
            outcomes = run_concurrently(lambda n=notice: send_notification(bank, n), n=2)
            assert sorted(outcomes, key=str) == [None, "sent"] and send_notification(bank, notice) is None
    assert len(mailbox.accepted) == 2
    sent = {m["Message-ID"]: m for m in mailbox.accepted}
    with_pdf, without = sent[f"<{notices[number]}@bankq>"], sent[f"<{notices[bulky_number]}@bankq>"]

    [attached] = list(with_pdf.iter_attachments())
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_filename() == f"statement-{number}-2026-10-01-2026-10-31.pdf"
    pdf_bytes = attached.get_content()
    download = client.get(f"/api/v1/reports/{report_id}/download", headers=auth_headers(client, owner))
    assert pdf_bytes == download.data
    page = pdfium.PdfDocument(pdf_bytes)[0]
    assert sum(1 for px in page.render(scale=1).to_pil().convert("L").getdata() if px < 128) > 500
    words = page.get_textpage().get_text_range()
    assert "Closing balance: 113.21 EUR" in words and f"Account number: {number}" in words
    assert "attached to this email as a PDF" in with_pdf.get_body(("plain",)).get_content()

    assert list(without.iter_attachments()) == []  # over the bound: it says where to download it instead
    body = without.get_body(("plain",)).get_content()
    assert "/download" in body and "attached" not in body
    listed = client.get("/api/v1/notifications", headers=auth_headers(client, owner)).get_json()["items"]
    assert sorted((i["attachment"] or {}).get("size", 0) for i in listed) == [0, len(pdf_bytes)]


def test_statements_render_on_the_embedded_sqlite_default(tmp_path):
    settings = Settings.from_env({"BANKQ_DATA_DIR": str(tmp_path), "BANKQ_SECRET_KEY": os.environ["BANKQ_SECRET_KEY"]})
    lite = Bank(settings)
    try:
        assert not lite.db.is_postgres
        prepare(lite)
        owner, account = history(lite)
        for fmt in ("csv", "pdf"):
            accepted = statements.request_statement(
                lite,
                owner,
                account,
                first=date(2026, 10, 1),
                last=date(2026, 10, 31),
                format=fmt,
                idempotency_key=fmt,
            )
            assert worker.process_report(lite, accepted.body["id"], batch_size=2) == "ready"
            report = statements.get_report(lite, owner, report_id_of(accepted.body))
            assert report["summary"]["closing_balance"] == "113.21" and report["summary"]["entries"] == 3
            assert statements.download(lite, owner, report["id"]).path.stat().st_size == report["size"]
        clock.freeze(at("2026-11-01", 1))
        assert monthly.queue_monthly_statements(lite) == 1 and monthly.queue_monthly_statements(lite) == 0
    finally:
        clock.unfreeze()
        lite.db.dispose()
