"""Patient-grouped cross-validation: every patient is predicted once, leak-free, by folds that belong to the
data; rows, predictions and resume are per fold; the intervals over all patients cover and stay at chance
under the null; holdout cells are untouched by the scheme's existence."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from skinbench.api import ConfigError
from skinbench.datasets.demo import DemoDataset
from skinbench.leaderboard import leaderboard_stats, read_results
from skinbench.leaderboard.simulation import Population, cv_coverage
from skinbench.data.protocol import Protocol, leakage_problems, patient_folds
from skinbench.execution.runner import Grid, run_suite
from skinbench.record.store import ResultsStore
from skinbench.data.preflight import preflight

CV = {"scheme": "cv", "folds": 4, "seeds": [0, 1], "dummy_draws": 100}


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    """A tiny cv run with two repeats and classical augmentation (shared by the tests that only read it)."""
    from conftest import tiny_suite

    out = tmp_path_factory.mktemp("cv") / "run"
    suite = tiny_suite(augmenters=["none", "classical"], protocol={**CV, "cv_repeats": 2})
    return suite, out, run_suite(suite, out)


def test_every_patient_is_predicted_exactly_once_per_configuration_seed_and_repeat(cv_run):
    suite, out, results = cv_run
    assert (results["status"] == "ok").all()
    assert sorted(results["fold"].unique()) == [0, 1, 2, 3] and sorted(results["split"].unique()) == [0, 1]
    assert set(results["scheme"]) == {"cv"}
    store = ResultsStore(out)
    patients_of_task = {}
    for (cell, task, seed, split), rows in results.groupby(["cell_id", "task", "seed", "split"]):
        assert sorted(rows["fold"]) == [0, 1, 2, 3]
        frames = [pd.read_parquet(store.predictions_path(cell, seed, split, fold)) for fold in rows["fold"]]
        groups = [set(f["group"]) for f in frames]
        joined = pd.concat(frames)
        assert sum(len(g) for g in groups) == len(set().union(*groups)), "a patient is tested in two folds"
        assert joined["image"].is_unique
        patients_of_task.setdefault(task, set()).add(frozenset(joined["group"]))
    checked = preflight(suite)
    for task in checked.datasets[0].tasks:
        assert patients_of_task[task.name] == {frozenset(task.samples["group"].astype(str))}


def test_no_training_validation_or_synthetic_image_of_a_fold_comes_from_its_test_patients(cv_run, tmp_path):
    suite, _, _ = cv_run
    checked = preflight(suite)
    grid = Grid(checked, ResultsStore(tmp_path / "empty"), progress=False)
    groups, dummies = grid.plan()
    folds = {id(g.fold): g.fold for g in groups} | {id(f): f for f, _ in dummies}
    assert len({f.key for f in folds.values()}) == 5 * 2 * 4 * 2  # tasks × repeats × folds × seeds
    classical = grid.augmenters[1]
    for fold in folds.values():
        test = set(fold.test["group"])
        assert not test & set(fold.fit["group"]) and not test & set(fold.val["group"])
        assert set(fold.train["image"]) == set(fold.fit["image"]) | set(fold.val["image"])
        if fold.seed == 0 and fold.split == 0:
            synthetic = classical.augment(fold.fit.copy(), fold.task, fold.seed, tmp_path / "aug")
            assert len(synthetic) and not test & set(synthetic["group"])
            assert leakage_problems(synthetic, fold.fit, fold.val, fold.test) == []


def test_folds_cover_every_bin_and_repeats_redraw_them():
    rng = np.random.default_rng(0)
    rows = [{"group": f"p{p}", "task": t, "stratum": int(rng.choice(3, p=[0.7, 0.2, 0.1]))}
            for p in range(50) for t in ("a", "b") for _ in range(2)]
    table = pd.DataFrame(rows)
    folds = patient_folds(table, 5, seed=0)
    assert sorted(g for fold in folds for g in fold) == sorted(set(table["group"]))
    for task, stratum in table.groupby(["task", "stratum"]).groups:
        holders = set(table[(table["task"] == task) & (table["stratum"] == stratum)]["group"])
        if len(holders) >= 5:  # a bin with a patient per fold reaches every fold's test part
            assert all(holders & set(fold) for fold in folds), (task, stratum)
    assert patient_folds(table, 5, seed=0) == folds
    assert patient_folds(table, 5, seed=1) != folds
    with pytest.raises(ConfigError, match="cannot fill 60 folds"):
        patient_folds(table, 60, seed=0)


def test_folds_belong_to_the_data_whatever_tasks_or_label_maps_a_suite_selects(tmp_path):
    folder = tmp_path / "cosmetic"
    shutil.copytree(DemoDataset(n_patients=30, image_size=16).generate().parent, folder)
    csv = str(folder / "cosmetic.csv")
    base = {"backbones": ["handcrafted"], "heads": ["logreg"], "protocol": {"seeds": 1, "scheme": "cv"}}

    def folds(entry):
        return preflight({**base, "datasets": [entry]}).datasets[0].splits

    every = folds({"name": "cosmetic-csv", "params": {"csv": csv}})
    assert len(every) == 5 and sorted(g for fold in every.values() for g in fold) == sorted(
        {g for fold in every.values() for g in fold})
    assert folds({"name": "cosmetic-csv", "params": {"csv": csv}, "tasks": ["oiliness"]}) == every
    assert folds({"name": "cosmetic-csv", "params": {"csv": csv, "features": ["oiliness"]}}) == every
    assert folds({"name": "cosmetic-csv", "params": {"csv": csv, "label_maps": {}}}) == every


def test_the_scheme_is_in_the_cell_identity_and_holdout_identity_is_unchanged():
    holdout, cv = Protocol(), Protocol(scheme="cv")
    assert set(holdout.identity()) == {"test_fraction", "tau", "split_seed", "val_folds", "resample_split",
                                       "split_file", "split_column", "dummy_draws"}
    assert cv.identity()["scheme"] == "cv" and "test_fraction" not in cv.identity()
    assert Protocol(scheme="cv", cv_repeats=3).identity() == cv.identity()  # repeats are a row column
    assert Protocol(scheme="cv", folds=10).identity() != cv.identity()
    with pytest.raises(ValueError, match="belong to the holdout scheme"):
        Protocol(scheme="cv", repeats=2)


def test_a_cv_run_and_a_holdout_run_share_no_cells_and_no_leaderboard(cv_run, tmp_path, suite_factory):
    suite, out, results = cv_run
    holdout = run_suite(suite_factory(augmenters=["none", "classical"], protocol={"seeds": [0, 1],
                                                                                  "dummy_draws": 100}),
                        tmp_path / "holdout")
    assert not set(holdout["cell_id"]) & set(results["cell_id"])
    assert set(holdout["fold"]) == {0} and set(holdout["scheme"]) == {"holdout"}
    from skinbench.leaderboard import merge_results

    with pytest.raises(Exception, match="mix evaluation schemes"):
        leaderboard_stats(merge_results([read_results(out), read_results(tmp_path / "holdout")]), n_boot=50)
    split_file = json.loads(next((out / "split").glob("*.json")).read_text())
    assert split_file["scheme"] == "cv" and len(split_file["folds_per_repeat"]["1"]) == 4


def test_statistics_use_every_patient_and_name_the_fold_part(cv_run):
    suite, out, results = cv_run
    stats = leaderboard_stats(read_results(out), n_boot=200)
    n_patients = 16
    assert (stats.tasks["test_patients_min"] == n_patients).all()
    assert (stats.tasks["n_folds"] == 4).all()
    models = stats.configurations[stats.configurations["verdict"].notna()]
    assert models["macro_f1_ci_low"].notna().all() and len(models) == 10
    assert stats.variance["sd_fold"].notna().all()
    assert stats.augmentation["gain_ci_low"].notna().all()
    row = results[(results["head"] == "logreg") & (results["task"] == "moisture")]
    assert (row["n_test"].groupby([row["cell_id"], row["seed"], row["split"]]).sum() ==
            preflight(suite).datasets[0].tasks[0].samples.shape[0]).all()


def test_a_missing_fold_leaves_its_configuration_without_an_interval(cv_run, tmp_path):
    _, out, results = cv_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    victim = results[(results["head"] == "logreg") & (results["task"] == "texture")].iloc[0]
    ResultsStore(copy).predictions_path(victim.cell_id, victim.seed, victim.split, victim.fold).unlink()
    stats = leaderboard_stats(read_results(copy), n_boot=50)
    row = stats.configurations.set_index("cell_id").loc[victim.cell_id]
    assert np.isnan(row["macro_f1_ci_low"]) and pd.isna(row["verdict"])
    assert any("texture" in w and "no stored predictions" in w for w in stats.warnings)


def test_a_cv_run_killed_mid_fold_resumes_only_the_missing_folds(tmp_path, suite_factory):
    suite = suite_factory(protocol=CV)
    first = run_suite(suite, tmp_path / "run")
    store = ResultsStore(tmp_path / "run")
    lines = store.log.read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if not (b'"fold":3' in line and b'"task":"texture"' in line)]
    store.log.write_bytes(b"".join(kept) + kept[-1][:40])  # fold 3 of one task lost, and a torn last record
    lost = len(lines) - len(kept)
    assert lost == 4 * 2  # logreg + 3 dummies, 2 seeds
    second = run_suite(suite, tmp_path / "run")
    appended = len(store.log.read_bytes().splitlines()) - len(kept)
    assert appended == lost
    columns = ["cell_id", "seed", "split", "fold", "macro_f1"]
    pd.testing.assert_frame_equal(second[columns].sort_values(columns[:4]).reset_index(drop=True),
                                  first[columns].sort_values(columns[:4]).reset_index(drop=True))


def test_cross_validated_intervals_cover_the_procedures_true_macro_f1():
    """Coverage of the cv interval (with its variance inflation) over 2 × 300 simulated datasets of 40 patients
    whose truth is known (measured: 94.0% and 96.7%; the plain patient bootstrap: 82.7% and 89.0%).
    benchmarks/cv_coverage.py measures both at 40 and 200 patients."""
    results = [cv_coverage(40, n_sets=300, n_boot=300, seed=3, population=population)
               for population in (Population(), Population(separation=1.5, dim=4))]
    coverage = [r["coverage"] for r in results]
    assert np.mean(coverage) >= 0.93 and min(coverage) >= 0.92, results
    assert all(r["coverage_plain_bootstrap"] < r["coverage"] - 0.03 for r in results), results


@pytest.mark.slow
def test_permuted_label_heads_stay_at_chance_under_cv(tmp_path):
    from plugins_for_tests import TestPlugins

    suite = {
        "name": "null-control-cv",
        "datasets": [{"name": "demo", "params": {"n_patients": 40, "image_size": 32}}],
        "backbones": [{"name": "handcrafted", "params": {"size": 16}}],
        "augmenters": [{"name": "none"}],
        "heads": [{"name": "logreg"}, *({"name": "logreg-permuted", "params": {"permutation": i}} for i in range(3))],
        "protocol": {"seeds": [0, 1], "dummy_draws": 200, "scheme": "cv", "folds": 5},
    }
    run_suite(suite, tmp_path / "run", extra_plugins=[TestPlugins()])
    configurations = leaderboard_stats(read_results(tmp_path / "run")).configurations
    permuted = configurations[configurations["head"] == "logreg-permuted"]
    assert len(permuted) == 15 and (permuted["verdict"] == "above_chance").mean() <= 0.05
    real = configurations[configurations["head"] == "logreg"].set_index("task")["verdict"]
    assert real["moisture"] == "above_chance" and (real == "above_chance").sum() >= 2
