"""The results store: a run killed at any byte resumes, corrupt records are reported and recomputed."""
from __future__ import annotations

import json
import stat

import pandas as pd
import pytest

from skinbench.leaderboard import read_results
from skinbench.execution.runner import run_suite
from skinbench.record.store import METRICS, ResultsStore, merge_rows


def _comparable(df: pd.DataFrame) -> pd.DataFrame:
    return df[["cell_id", "seed", "split", "status", *METRICS]].sort_values(["cell_id", "seed", "split"]) \
        .reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from conftest import tiny_suite

    suite = tiny_suite(protocol={"seeds": [0], "dummy_draws": 50})
    out = tmp_path_factory.mktemp("reference")
    return suite, out, run_suite(suite, out)


@pytest.mark.parametrize("cut", [0.5, 0.73, 0.999])
def test_a_store_cut_mid_record_resumes_to_the_same_rows(tmp_path, reference, cut):
    suite, ref_dir, ref_rows = reference
    log = (ref_dir / "results.jsonl").read_bytes()
    out = tmp_path / "cut"
    out.mkdir()
    position = int(len(log) * cut)
    assert log[position - 1:position] != b"\n", "the cut must fall inside a record"
    (out / "results.jsonl").write_bytes(log[:position])
    store = ResultsStore(out)
    kept = store.read()
    assert 0 < len(kept) < len(ref_rows)
    assert any("torn record" in p for p in store.problems)
    resumed = run_suite(suite, out)
    pd.testing.assert_frame_equal(_comparable(resumed), _comparable(ref_rows))
    assert len((out / "results.corrupt.jsonl").read_bytes().splitlines()) == 1


def test_a_garbage_or_altered_record_is_skipped_and_recomputed(tmp_path, reference):
    suite, ref_dir, ref_rows = reference
    lines = (ref_dir / "results.jsonl").read_bytes().splitlines(keepends=True)
    record = json.loads(lines[3])
    record["row"]["macro_f1"] = 1.0  # an edit the checksum no longer matches
    lines[3] = (json.dumps(record) + "\n").encode()
    lines.insert(5, b"\x00\xffgarbage\n")
    out = tmp_path / "damaged"
    out.mkdir()
    (out / "results.jsonl").write_bytes(b"".join(lines))
    store = ResultsStore(out)
    assert len(store.read()) == len(ref_rows) - 1
    assert {p.split(": ", 1)[1].split(" ")[0] for p in store.problems} == {"checksum", "not"}
    pd.testing.assert_frame_equal(_comparable(run_suite(suite, out)), _comparable(ref_rows))


def test_exports_are_readable_by_pandas_and_respect_the_umask(reference):
    _, ref_dir, ref_rows = reference
    assert len(pd.read_csv(ref_dir / "results.csv")) == len(ref_rows)
    assert len(pd.read_parquet(ref_dir / "results.parquet")) == len(ref_rows)
    for name in ("results.jsonl", "results.csv", "suite.yaml", "receipt.json"):
        mode = stat.S_IMODE((ref_dir / name).stat().st_mode)
        assert mode & 0o044 == 0o044, (name, oct(mode))  # group and others can read (umask 022)


def test_merging_run_directories_counts_each_row_once(reference):
    _, ref_dir, ref_rows = reference
    merged = merge_rows([ResultsStore(ref_dir).read(), ResultsStore(ref_dir).read()])
    assert len(merged) == len(ref_rows)
    assert len(read_results(ref_dir)) == len(ref_rows)


def test_a_legacy_results_csv_is_imported(tmp_path, reference):
    _, ref_dir, ref_rows = reference
    out = tmp_path / "legacy"
    out.mkdir()
    ref_rows.drop(columns=["split"]).to_csv(out / "results.csv", index=False)
    store = ResultsStore(out)
    assert store.prepare() == []
    assert (out / "results.jsonl").exists()
    assert _comparable(store.read())[["cell_id", "macro_f1"]].equals(_comparable(ref_rows)[["cell_id", "macro_f1"]])
