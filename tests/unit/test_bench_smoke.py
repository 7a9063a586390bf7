"""The benchmark's pure parts: settings, parsing pgbench, percentiles, ratios and the verdict table."""

from __future__ import annotations

import json

import pytest

from bench.config import BenchConfig
from bench.http_transfers import percentile
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
    values: dict[str, object] = dict(pgbench_tps=2000.0, celery_noop_per_second=500.0, accept_per_second=600.0,
                                     accept_p50_ms=10.0, accept_p99_ms=40.0, e2e_per_second=400.0,
                                     batch_per_second={1: 5500.0, 2: 4000.0})
    values.update(overrides)
    return Figures(**values)  # type: ignore[arg-type]


def test_config_reads_sizes_from_the_environment():
    config = BenchConfig.from_env({"BENCH_TRANSFERS": "50", "BENCH_BATCH_PROCESSES": "1, 2,4",
                                   "BENCH_DATABASE_URL": "postgresql://u:secret@db/x"})
    assert config.transfers == 50 and config.batch_processes == (1, 2, 4)
    assert BenchConfig.from_env({}).transfers == BenchConfig().transfers
    assert "secret" not in json.dumps(config.public())
    with pytest.raises(ValueError):
        BenchConfig.from_env({"BENCH_BATCH_PROCESSES": "0"})


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


def test_ratios_and_verdicts_against_the_design_targets():
    f = figures()
    r = ratios(f)
    assert r["accept_vs_celery_noop"] == pytest.approx(1.2)
    assert r["e2e_vs_celery_noop"] == pytest.approx(0.8)
    assert r["batch_1p_vs_pgbench_tpcb"] == pytest.approx(2.75)
    assert r["batch_2p_vs_pgbench_tpcb"] == pytest.approx(2.0)
    assert r["batch_vs_pgbench_tpcb"] == pytest.approx(2.75)
    ok = verdicts(f)
    assert ok["accept_vs_celery_noop"] and not ok["e2e_vs_celery_noop"]
    assert ok["batch_1p_vs_pgbench_tpcb"] and not ok["batch_2p_vs_pgbench_tpcb"]
    assert not verdicts(figures(pgbench_tps=0.0))["batch_vs_pgbench_tpcb"]


def test_table_shows_each_figure_ratio_and_verdict():
    text = table(figures())
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["figure", "measured", "ratio"]
    accept = next(line for line in lines if "accept rate" in line)
    assert "1.20x B" in accept and ">= 1.00x B" in accept and accept.endswith("yes")
    batch_two = next(line for line in lines if "2 processes" in line)
    assert "2.00x A" in batch_two and ">= 2.50x A" in batch_two and batch_two.endswith("NO")


def test_results_file_is_json(tmp_path):
    path = tmp_path / "results" / "latest.json"
    write_results(results_document(figures(), {"http": {"accepted": 1}}, BenchConfig().public()), path)
    document = json.loads(path.read_text())
    assert document["figures"]["batch_per_second"] == {"1": 5500.0, "2": 4000.0}
    assert document["targets"]["batch_vs_pgbench_tpcb"] == 2.5
    assert document["targets_met"]["accept_vs_celery_noop"] is True


def test_cpu_per_item():
    assert per_item({"api": 1.0, "worker": 0.5, "redis": 0.0}, 100) == {"api": 10.0, "worker": 5.0, "total": 15.0}
    assert per_item({"api": 1.0}, 0) == {}


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
