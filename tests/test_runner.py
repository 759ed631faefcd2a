"""The grid runner end to end on the tiny demo: store layout, resume, failures, leakage."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from plugins_for_tests import CountingBackbone, TestPlugins
from skinbench.execution.runner import run_suite
from skinbench.record.store import METRICS, ResultsStore

N_TASKS, N_DUMMIES = 5, 3


def test_run_writes_a_complete_run_directory(tmp_path, suite_factory):
    out = tmp_path / "run"
    results = run_suite(suite_factory(), out)
    assert len(results) == N_TASKS * 2 * (N_DUMMIES + 1)
    assert (results["status"] == "ok").all()
    for name in ("suite.yaml", "receipt.json", "results.jsonl", "results.csv", "results.parquet"):
        assert (out / name).exists(), name
    split_files = list((out / "split").glob("demo-*.json"))  # non-default parameters: the name carries a hash
    assert len(split_files) == 1
    receipt = json.loads((out / "receipt.json").read_text())
    assert receipt["packages"]["torch"] and receipt["device"]
    resolved = yaml.safe_load((out / "suite.yaml").read_text())
    assert resolved["heads"][0]["params"]["C_grid"] == [0.5, 1.0, 2.0]  # defaults are filled in
    assert resolved["protocol"]["seed_effects"]["changes"]
    split = json.loads(split_files[0].read_text())
    assert split["dataset"] == "demo(image_size=32, n_patients=16)" == results["dataset"].iloc[0]
    test_groups = set(split["test_groups"])
    assert len(test_groups) == 4  # ceil(0.2 * 16), unless the greedy cover needed more
    for _, row in results.iterrows():
        pred = pd.read_parquet(ResultsStore(out).predictions_path(row.cell_id, row.seed, row.split))
        assert set(pred["group"]) <= test_groups  # only test patients are scored
        assert len(pred) == row.n_test
    model = results[results["head"] == "logreg"]
    assert model["n_train"].min() > 0 and model["n_val"].min() > 0
    assert set(results.loc[results["backbone"] == "-", "head"]) == {
        "dummy:most_frequent", "dummy:uniform", "dummy:stratified"}


def test_rerun_recomputes_nothing_and_new_params_make_new_cells(tmp_path, suite_factory):
    out = tmp_path / "run"
    suite = suite_factory(backbones=[{"name": "counting", "params": {"size": 32}}])
    CountingBackbone.calls = 0
    first = run_suite(suite, out, extra_plugins=[TestPlugins()])
    assert CountingBackbone.calls > 0
    CountingBackbone.calls = 0
    second = run_suite(suite, out, extra_plugins=[TestPlugins()])
    assert CountingBackbone.calls == 0
    pd.testing.assert_frame_equal(first, second)
    changed = suite_factory(backbones=[{"name": "counting", "params": {"size": 32}}],
                            heads=[{"name": "logreg", "params": {"C_grid": [1.0]}}])
    third = run_suite(changed, out, extra_plugins=[TestPlugins()])
    assert CountingBackbone.calls == 0  # embeddings come from the cache
    new = third[~third["cell_id"].isin(first["cell_id"])]
    assert len(new) == N_TASKS * 2 and set(new["head_label"]) == {"logreg(C_grid=[1.0])"}


def test_a_failing_plugin_fails_only_its_cells(tmp_path, suite_factory):
    suite = suite_factory(heads=[{"name": "logreg"}, {"name": "broken"}])
    results = run_suite(suite, tmp_path / "run", extra_plugins=[TestPlugins()])
    broken = results[results["head"] == "broken"]
    three_class = broken["n_classes"] == 3
    assert (broken.loc[three_class, "status"] == "failed").all()
    assert broken.loc[three_class, "error"].str.contains("head 'broken' failed: RuntimeError: deliberate failure").all()
    assert (broken.loc[~three_class, "status"] == "ok").all()
    assert (results[results["head"] != "broken"]["status"] == "ok").all()
    assert "deliberate failure" in (tmp_path / "run" / "errors.log").read_text()
    again = run_suite(suite, tmp_path / "run", extra_plugins=[TestPlugins()])  # failed cells are retried
    assert len(again) == len(results)
    assert again.groupby(["cell_id", "seed"]).size().max() == 1


def _comparable(df: pd.DataFrame) -> pd.DataFrame:
    cols = ["cell_id", "seed", "status", *METRICS]
    return df[cols].sort_values(["cell_id", "seed"]).reset_index(drop=True)


def test_killed_run_resumes_to_the_same_results(tmp_path, suite_factory):
    suite = suite_factory(augmenters=[{"name": "none"}, {"name": "classical"}])
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(yaml.safe_dump(suite))
    reference = run_suite(suite, tmp_path / "reference")
    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "skinbench.cli", "run", str(suite_file), "--out", str(out), "--no-progress",
           "--format", "none"]
    proc = subprocess.Popen(cmd, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "results.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_bytes().splitlines()) > 12:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    partial = ResultsStore(out).read()
    assert 0 < len(partial) < len(reference), "the run was not interrupted part-way"
    subprocess.run(cmd, env=os.environ.copy(), check=True, capture_output=True)
    pd.testing.assert_frame_equal(_comparable(run_suite(suite, out)), _comparable(reference))


def test_leakage_control_permuted_labels_sit_at_chance(tmp_path):
    """Trained on permuted labels, the probe's mean Δ over seeds is within noise of zero;
    trained on real labels, the learnable demo tasks are clearly above it."""
    suite = {
        "datasets": [{"name": "demo", "params": {"n_patients": 40, "image_size": 48}}],
        "backbones": [{"name": "handcrafted", "params": {"size": 48}}],
        "heads": ["logreg", "logreg-permuted"],
        "protocol": {"seeds": 6, "resample_split": True, "dummy_draws": 200},
    }
    results = run_suite(suite, tmp_path / "run", extra_plugins=[TestPlugins()])
    strat = results[results["head"] == "dummy:stratified"].set_index(["task", "seed"])["macro_f1"]

    def delta(head: str) -> pd.Series:
        rows = results[results["head"] == head].set_index(["task", "seed"])["macro_f1"]
        return rows - strat.loc[rows.index]

    permuted, real = delta("logreg-permuted"), delta("logreg")
    noise = 2 * permuted.std() / len(permuted) ** 0.5
    assert abs(permuted.mean()) < max(noise, 0.05), (permuted.mean(), noise)
    for task in ("hyperpigmentation", "moisture"):
        assert real.loc[task].mean() > 0.15, (task, real.loc[task].mean())
        assert real.loc[task].mean() > permuted.loc[task].mean() + 0.15


def test_a_second_run_into_a_busy_directory_is_refused(tmp_path, suite_factory):
    from filelock import FileLock

    from skinbench.api import ConfigError

    out = tmp_path / "run"
    out.mkdir()
    with FileLock(out / ".skinbench.lock"):
        with pytest.raises(ConfigError, match="another skinbench run is writing there"):
            run_suite(suite_factory(), out)
    assert not (out / "results.csv").exists()


def test_two_configurations_of_one_dataset_stay_apart(tmp_path, suite_factory):
    small = {"name": "demo", "params": {"n_patients": 12, "image_size": 24}}
    other = {"name": "demo", "params": {"n_patients": 14, "image_size": 24}}
    results = run_suite(suite_factory(datasets=[small, other], protocol={"seeds": 1, "dummy_draws": 50}),
                        tmp_path / "run")
    assert results["dataset"].nunique() == 2
    assert len(list((tmp_path / "run" / "split").glob("demo-*.json"))) == 2
    from skinbench.leaderboard import read_results
    assert len(read_results(tmp_path / "run")) == len(results)  # both datasets' rows are current
