"""The benchmark's pure parts: settings, parsing pgbench, percentiles, ratios and the verdict table."""

from __future__ import annotations

import json

import pytest

from bench.bankq_http import percentile
from bench.config import BenchConfig
from bench.pgbench import parse_tps, parse_transactions
from bench.report import Figures, per_item, ratios, results_document, table, verdicts, write_results

PGBENCH_OUTPUT = """\
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 1
number of clients: 4
number of threads: 2
duration: 10 s
number of transactions actually processed: 25116
latency average = 1.592 ms
initial connection time = 6.108 ms
tps = 2512.884173 (without initial connection time)
"""


def figures(**overrides: object) -> Figures:
    values: dict[str, object] = dict(
        pgbench_tps=2000.0, celery_noop_per_second=500.0, accept_per_second=600.0, accept_p50_ms=10.0,
        accept_p99_ms=40.0, e2e_per_second=400.0, offered_rate=500.0, offered_accept_per_second=499.0,
        offered_p50_ms=4.0, offered_p99_ms=20.0, batch_per_second=5500.0, statement_p50_ms=5.0,
        statement_p99_ms=60.0)
    values.update(overrides)
    return Figures(**values)  # type: ignore[arg-type]


def test_config_reads_sizes_from_the_environment():
    config = BenchConfig.from_env({"BENCH_SECONDS": "2.5", "BENCH_SCALING": "1x1, 2x4",
                                   "BENCH_DATABASE_URL": "postgresql://u:secret@db/x"})
    assert config.seconds == 2.5 and config.scaling == ((1, 1), (2, 4))
    assert BenchConfig.from_env({}) == BenchConfig()
    assert "secret" not in json.dumps(config.public())
    for bad in ("0x1", "2", "ax1"):
        with pytest.raises(ValueError):
            BenchConfig.from_env({"BENCH_SCALING": bad})


def test_pgbench_output_is_parsed():
    assert parse_tps(PGBENCH_OUTPUT) == pytest.approx(2512.884173)
    assert parse_transactions(PGBENCH_OUTPUT) == 25116
    with pytest.raises(RuntimeError):
        parse_tps("pgbench: error: connection refused")


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 99) == 0.0


def test_ratios_and_verdicts_against_the_targets():
    f = figures()
    r = ratios(f)
    assert r["accept_vs_celery_noop"] == pytest.approx(1.2)
    assert r["e2e_vs_celery_noop"] == pytest.approx(0.8)
    assert r["batch_vs_pgbench_tpcb"] == pytest.approx(2.75)
    ok = verdicts(f)
    assert not ok["e2e_vs_celery_noop"] and ok["batch_vs_pgbench_tpcb"] and ok["offered_p99_ms"]
    assert not ok["statement_p99_ms"]
    assert verdicts(figures(e2e_per_second=500.0))["e2e_vs_celery_noop"]
    assert not verdicts(figures(pgbench_tps=0.0))["batch_vs_pgbench_tpcb"]
    # A p99 met by accepting less than was offered is not met.
    assert not verdicts(figures(offered_accept_per_second=300.0))["offered_p99_ms"]
    assert not verdicts(figures(statement_p99_ms=0.0))["statement_p99_ms"]


def test_table_shows_each_figure_ratio_and_verdict():
    text = table(figures())
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["figure", "measured", "ratio"]
    e2e = next(line for line in lines if "posted/s, end to end" in line)
    assert "0.80x B" in e2e and ">= 1.00x B" in e2e and e2e.endswith("NO")
    batch = next(line for line in lines if line.startswith("batch transfers"))
    assert "2.75x A" in batch and ">= 2.50x A" in batch and batch.endswith("yes")
    assert next(line for line in lines if line.startswith("statement page")).endswith("NO")


def test_results_file_is_json(tmp_path):
    path = tmp_path / "results" / "latest.json"
    write_results(results_document(figures(), {"http": {"accepted": 1}}, BenchConfig().public()), path)
    document = json.loads(path.read_text())
    assert document["figures"]["batch_per_second"] == 5500.0
    assert document["targets"]["batch_vs_pgbench_tpcb"] == ">= 2.50x A"
    assert document["targets_met"]["batch_vs_pgbench_tpcb"] is True


def test_cpu_per_item():
    assert per_item({"api": 1.0, "worker": 0.5, "redis": 0.0}, 100) == {"api": 10.0, "worker": 5.0, "total": 15.0}
    assert per_item({"api": 1.0}, 0) == {}


def test_cpu_per_item_charges_each_side_its_own_count():
    spent = per_item({"api": 1.0, "worker": 1.0, "postgres": 1.5, "bench": 0.1}, 50, accepted=100)
    assert spent == {"api": 10.0, "worker": 20.0, "postgres": 20.0, "bench": 1.333, "total": 51.333}


def test_the_kyc_bench_reads_and_reports_a_realistic_document():
    """A tiny run of `python -m bench.kyc_ocr` (one realistic document, the real reader), so it cannot rot."""
    from bench import kyc_ocr
    from tests.photos import realistic_set

    [sample] = realistic_set(1)
    rows = kyc_ocr.run([sample], ["bankq"], verbose=False)
    assert [row.reader for row in rows] == ["bankq"] and rows[0].seconds > 0
    assert not rows[0].false_valid
    text = kyc_ocr.report(rows)
    assert "read exactly" in text and "layout TD1" in text and "clean-to-moderate" in text


def test_the_kyc_bench_counts_a_wrong_valid_reading_as_false_valid():
    from bench import kyc_ocr
    from core.mrz import icao
    from tests.photos import realistic_set

    [sample] = realistic_set(1)
    truth = icao.parse(sample.lines)
    assert kyc_ocr.score("x", sample, truth, 1.0).exact
    first, second, third = sample.lines
    renamed = icao.parse([first, second, third.replace("SILVA", "SILVO")])
    row = kyc_ocr.score("x", sample, renamed, 1.0)
    assert renamed.valid and row.false_valid and row.exact and not row.names
    assert not kyc_ocr.score("x", sample, None, 1.0).exact
