"""Leaderboard statistics: intervals that cover, verdicts that hold under the null, ties, splits, sizes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from leaderboard_fixtures import cell_id, patients, write_task
from plugins_for_tests import TestPlugins
from skinbench.api import DataError
from skinbench.baselines import dummy_scores
from skinbench.leaderboard import leaderboard_stats, merge_results, read_results, subgroup_stats
from skinbench.leaderboard.stats import (
    ResamplePlan,
    StoredPrediction,
    TaskPredictions,
    bootstrap_task,
    leaderboard_metrics,
    minimum_detectable_delta,
)
from skinbench.execution.runner import run_suite

A, B = ("handcrafted", "none", "logreg"), ("timm(model=resnet18)", "none", "logreg")


def _config(stats, backbone, augmenter="none", head="logreg", task=None):
    frame = stats.configurations
    match = frame[(frame["backbone_label"] == backbone) & (frame["augmenter_label"] == augmenter)
                  & (frame["head_label"] == head) & ((frame["task"] == task) if task else True)]
    assert len(match) == 1
    return match.iloc[0]


def _noisy(y, accuracy, rng, k=2):
    """Predictions right with probability ``accuracy``, else a random other class."""
    wrong = rng.random(len(y)) > accuracy
    return np.where(wrong, (y + rng.integers(1, k, len(y))) % k, y)


def test_point_estimates_are_the_stored_seed_means_and_inside_their_intervals(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    write_task(tmp_path, patients(20), y, {A: [_noisy(y, 0.8, rng) for _ in range(3)],
                                           B: [_noisy(y, 0.6, rng) for _ in range(3)]})
    results = read_results(tmp_path)
    stats = leaderboard_stats(results, n_boot=300)
    for backbone in (A[0], B[0]):
        row = _config(stats, backbone)
        stored = results[(results["backbone_label"] == backbone)]
        for metric in ("macro_f1", "weighted_f1", "balanced_accuracy", "mcc"):
            assert row[f"{metric}_mean"] == pytest.approx(stored[metric].mean(), abs=1e-12)
            assert row[f"{metric}_ci_low"] <= row[f"{metric}_mean"] <= row[f"{metric}_ci_high"]
    assert {"macro_f1_mean", "macro_f1_ci_low", "macro_f1_ci_high", "delta_vs_stratified",
            "delta_vs_stratified_ci_low", "delta_vs_stratified_ci_high", "p_vs_stratified", "p_vs_stratified_holm",
            "verdict", "tied_with_best"} <= set(stats.configurations.columns)


def test_dummy_expectation_matches_the_runners_monte_carlo_expectation(tmp_path):
    """The leaderboard's estimator of a random dummy (multinomial confusion rows) against
    ``dummy_scores`` (per-image draws) with many draws each."""
    rng = np.random.default_rng(1)
    y = rng.choice(3, 24, p=[0.6, 0.3, 0.1])
    train_counts = (50, 25, 5)
    write_task(tmp_path, patients(12), y, {A: [y]}, classes=("x", "y", "z"), train_counts=train_counts, ordinal=True)
    stats = leaderboard_stats(read_results(tmp_path), n_boot=50)
    y_train = np.repeat(np.arange(3), train_counts)
    for kind in ("stratified", "uniform"):
        reference, _ = dummy_scores(kind, y_train, y, 3, True, draws=20_000, seed=7)
        row = _config(stats, "-", "-", f"dummy:{kind}")
        for metric, tolerance in (("macro_f1", 0.01), ("weighted_f1", 0.01), ("accuracy", 0.01),
                                  ("balanced_accuracy", 0.01), ("qwk", 0.025)):  # ~3 Monte-Carlo SEs of 1,000 draws
            assert row[f"{metric}_mean"] == pytest.approx(reference[metric], abs=tolerance), (kind, metric)


def _simulated_task(rng, n_patients, k=3):
    """Patients with 1-3 images, labels correlated within a patient, errors correlated within a patient.

    Marginally P(y) = prior and P(pred | y) = confusion, so the true macro-F1 is that of the
    expected confusion matrix prior[:, None] * confusion.
    """
    prior = np.array([0.5, 0.3, 0.2])
    confusion = np.array([[0.7, 0.2, 0.1], [0.2, 0.6, 0.2], [0.15, 0.15, 0.7]])
    shift = np.array([[0.2, -0.1, -0.1], [-0.1, 0.2, -0.1], [-0.1, -0.1, 0.2]])
    sizes = rng.integers(1, 4, n_patients)
    patient = np.repeat(np.arange(n_patients), sizes)
    latent = rng.choice(k, n_patients, p=prior)[patient]
    y = np.where(rng.random(len(patient)) < 0.7, latent, rng.choice(k, len(patient), p=prior))
    easy = (rng.random(n_patients) < 0.5)[patient]  # half the patients are easier, half harder: same average
    cumulative = (confusion[y] + np.where(easy[:, None], 1, -1) * shift[y]).cumsum(1)
    seeds = [(rng.random(len(y))[:, None] > cumulative).sum(1) for _ in range(2)]
    expected = prior[:, None] * confusion
    f1 = 2 * np.diag(expected) / (expected.sum(1) + expected.sum(0))
    return patient, y, seeds, float(f1.mean())


def test_patient_bootstrap_interval_covers_the_true_macro_f1():
    """Coverage of the 95% interval over 2 × 300 simulated test sets (30 and 80 patients, 2 seeds each)
    of a known classifier (measured: 93.7% and 94.3%).

    500 resamples per set: the interval needs the bootstrap SE only, which 500 resamples estimate
    within about 3%.
    """
    coverage = {}
    for n_patients in (30, 80):
        rng = np.random.default_rng(2024 + n_patients)
        covered = []
        for index in range(300):
            patient, y, seeds, truth = _simulated_task(rng, n_patients)
            files = {("c", s): StoredPrediction(patient, y, pred, None, {"image": np.arange(len(y)).astype(str)})
                     for s, pred in enumerate(seeds)}
            task = TaskPredictions("sim", "t", ["0", "1", "2"], False, {0: pd.Index(range(n_patients))},
                                   {0: files}, [])
            plan = ResamplePlan.draw({0: n_patients}, 500, index, "sim")
            interval = bootstrap_task(task, plan, leaderboard_metrics(False))["c"].estimate("macro_f1")
            covered.append(interval.low <= truth <= interval.high)
        coverage[n_patients] = np.mean(covered)
    assert np.mean(list(coverage.values())) >= 0.93 and min(coverage.values()) >= 0.92, coverage


@pytest.mark.slow
def test_permuted_label_heads_stay_at_chance_while_real_signal_does_not(tmp_path):
    """Null control: logreg trained on permuted labels (two variants, every task) is never called above
    chance after Holm, while the real logreg on the demo's learnable tasks is."""
    suite = {
        "name": "null-control",
        "datasets": [{"name": "demo", "params": {"n_patients": 60, "image_size": 32}}],
        "backbones": [{"name": "handcrafted", "params": {"size": 16}}],
        "augmenters": [{"name": "none"}],
        "heads": [{"name": "logreg"}, {"name": "logreg-permuted"},
                  {"name": "logreg-permuted", "params": {"whiten": False, "C_grid": [1.0]}}],
        "protocol": {"seeds": [0, 1], "dummy_draws": 200},
    }
    run_suite(suite, tmp_path / "run", extra_plugins=[TestPlugins()])
    configurations = leaderboard_stats(read_results(tmp_path / "run")).configurations
    permuted = configurations[configurations["head"] == "logreg-permuted"]
    assert len(permuted) == 10
    assert (permuted["verdict"] == "above_chance").mean() <= 0.05
    real = configurations[configurations["head"] == "logreg"].set_index("task")["verdict"]
    assert real["moisture"] == "above_chance" and (real == "above_chance").sum() >= 2


def test_verdicts_agree_with_their_intervals(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    write_task(tmp_path, patients(30), y, {
        ("perfect", "none", "logreg"): [y, y],
        ("inverted", "none", "logreg"): [1 - y, 1 - y],
        ("coin", "none", "logreg"): [rng.integers(0, 2, 60), rng.integers(0, 2, 60)],
    }, train_counts=(20, 20))
    stats = leaderboard_stats(read_results(tmp_path), n_boot=1000)
    assert _config(stats, "perfect")["verdict"] == "above_chance"
    assert _config(stats, "inverted")["verdict"] == "below_chance"
    assert _config(stats, "coin")["verdict"] == "chance"
    models = stats.configurations[stats.configurations["verdict"].notna()]
    above = models[models["verdict"] == "above_chance"]
    assert (above["p_vs_best_dummy_holm"] < 0.05).all() and (above["delta_vs_best_dummy_ci_low"] > 0).all()
    below = models[models["verdict"] == "below_chance"]
    assert (below["delta_vs_stratified_ci_high"] < 0).all()
    assert stats.n_models == 3


def test_ties_with_the_best_configuration(tmp_path):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 80)
    best = _noisy(y, 0.95, rng)
    one_off = best.copy()
    one_off[np.flatnonzero(best == y)[0]] ^= 1  # one more error than the best
    write_task(tmp_path, patients(40), y, {
        ("best", "none", "logreg"): [best],
        ("copy", "none", "logreg"): [best.copy()],        # identical to the best
        ("one-off", "none", "logreg"): [one_off],
        ("weak", "none", "logreg"): [_noisy(y, 0.55, rng)],
    }, train_counts=(20, 20))
    stats = leaderboard_stats(read_results(tmp_path), n_boot=1000)
    tied = {b: _config(stats, b)["tied_with_best"] for b in ("best", "copy", "one-off", "weak")}
    assert tied == {"best": True, "copy": True, "one-off": True, "weak": False}
    assert pd.isna(_config(stats, "best")["p_vs_best_holm"])
    assert _config(stats, "copy")["p_vs_best_holm"] == 1.0
    assert _config(stats, "weak")["p_vs_best_holm"] < 0.05


def test_augmentation_effect_is_paired_and_holm_corrected(tmp_path):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 60)
    base = _noisy(y, 0.6, rng)
    write_task(tmp_path, patients(30), y, {
        ("handcrafted", "none", "logreg"): [base, base],
        ("handcrafted", "classical", "logreg"): [base, base],   # changes nothing
        ("handcrafted", "sd", "logreg"): [y, y],                # fixes every error
    }, train_counts=(20, 20))
    effects = leaderboard_stats(read_results(tmp_path), n_boot=1000).augmentation.set_index("augmenter_label")
    assert effects.loc["classical", "gain"] == 0 and effects.loc["classical", "effect"] == "no_difference"
    assert effects.loc["classical", ["gain_ci_low", "gain_ci_high"]].tolist() == [0, 0]
    assert effects.loc["sd", "effect"] == "helps" and effects.loc["sd", "gain_ci_low"] > 0
    assert effects.loc["sd", "p_helps_holm"] >= effects.loc["sd", "p_helps"]


def test_several_splits_enter_the_interval_and_the_variance_parts(tmp_path):
    """Split-dependent skill shows as split variance and widens the interval; seed noise shows as seed variance."""
    rng = np.random.default_rng(6)
    for split, accuracy in enumerate((0.95, 0.6, 0.95, 0.6)):
        y = rng.integers(0, 2, 60)
        write_task(tmp_path, patients(30), y, {
            ("split-sensitive", "none", "logreg"): [_noisy(y, accuracy, rng) for _ in range(2)],
            ("steady", "none", "logreg"): [_noisy(y, 0.8, rng) for _ in range(2)],
        }, split=split, train_counts=(20, 20))
    results = read_results(tmp_path)
    assert sorted(results["split"].unique()) == [0, 1, 2, 3]
    stats = leaderboard_stats(results, n_boot=1000)
    sensitive = _config(stats, "split-sensitive")
    stored = results[results["backbone_label"] == "split-sensitive"]
    assert sensitive["macro_f1_mean"] == pytest.approx(stored.groupby("split")["macro_f1"].mean().mean())
    single = leaderboard_stats(results[results["split"] == 0], n_boot=1000)
    width = sensitive["macro_f1_ci_high"] - sensitive["macro_f1_ci_low"]
    assert width > 1.5 * (_config(single, "split-sensitive")["macro_f1_ci_high"]
                          - _config(single, "split-sensitive")["macro_f1_ci_low"])
    variance = stats.variance.iloc[0]
    assert variance["n_splits"] == 4 and variance["n_seeds"] == 2
    assert variance["sd_split"] > 0.05 and variance["sd_seed"] > 0 and variance["sd_test"] > 0
    assert variance[["share_seed", "share_split", "share_test"]].sum() == pytest.approx(1)
    assert single.variance.iloc[0][["sd_split", "share_split"]].isna().all()


def test_missing_split_column_means_one_split(tmp_path):
    """A run directory written before repeated splits (results.csv without 'split') reads as split 0."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 20)
    write_task(tmp_path / "new", patients(10), y, {A: [y]})
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "predictions").symlink_to(tmp_path / "new" / "predictions")
    read_results(tmp_path / "new").drop(columns=["split", "run_dir"]).to_csv(legacy / "results.csv", index=False)
    results = read_results(legacy)
    assert (results["split"] == 0).all()
    assert _config(leaderboard_stats(results, n_boot=100), A[0])["macro_f1_mean"] == 1.0


def test_sizes_detectable_delta_and_warnings(tmp_path):
    rng = np.random.default_rng(8)
    small_y = np.array([0] * 10 + [1] * 4 + [2] * 2)
    write_task(tmp_path, patients(8), small_y, {A: [_noisy(small_y, 0.7, rng, 3)]}, task="small",
               classes=("x", "y", "z"), train_counts=(30, 10, 0))
    large_y = rng.integers(0, 3, 320)
    write_task(tmp_path, patients(160), large_y, {A: [_noisy(large_y, 0.7, rng, 3)]}, task="large",
               classes=("x", "y", "z"), train_counts=(30, 10, 5))
    stats = leaderboard_stats(read_results(tmp_path), n_boot=500)
    tasks = stats.tasks.set_index("task")
    assert tasks.loc["small", "mde_delta"] > 2 * tasks.loc["large", "mde_delta"] > 0
    assert tasks.loc["small", "mde_delta_holm"] > tasks.loc["small", "mde_delta"]
    assert tasks.loc["small", "mde_delta"] == pytest.approx(minimum_detectable_delta(tasks.loc["small", "delta_scale"], 8))
    assert (tasks.loc["small", "test_patients_min"], tasks.loc["small", "test_images_min"]) == (8, 16)
    counts = stats.class_counts.set_index(["task", "class"])
    assert counts.loc[("small", "z"), ["n_train", "n_test"]].tolist() == [0, 2]
    assert counts.loc[("large", "x"), "n_train"] == 30
    assert any("small: class 'z' has no training image" in w for w in stats.warnings)
    assert any("small: class 'z' has 2 test image(s)" in w for w in stats.warnings)
    assert not any("large" in w for w in stats.warnings)


def test_merging_run_directories_counts_shared_rows_once(tmp_path):
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 40)
    write_task(tmp_path / "a", patients(20), y, {A: [y, y]})
    write_task(tmp_path / "b", patients(20), y, {B: [_noisy(y, 0.7, rng), _noisy(y, 0.7, rng)]})
    merged = merge_results([read_results(tmp_path / "a"), read_results(tmp_path / "b")])
    assert len(merged) == 2 * 3 + 2 + 2  # dummies of both directories once, each model's two seeds
    assert merged.duplicated(["cell_id", "seed", "split"]).sum() == 0
    model_dirs = merged.set_index("backbone_label")["run_dir"]
    assert model_dirs[A[0]].iloc[0].endswith("a") and model_dirs[B[0]].iloc[0].endswith("b")
    stats = leaderboard_stats(merged, n_boot=200)
    assert stats.n_models == 2 and _config(stats, A[0])["tied_with_best"]


def test_resample_plan_depends_on_the_task_and_seed_only():
    one = ResamplePlan.draw({0: 8}, 100, 0, "demo\x00moisture")
    again = ResamplePlan.draw({0: 8}, 100, 0, "demo\x00moisture")
    other = ResamplePlan.draw({0: 8}, 100, 0, "demo\x00oiliness")
    assert np.array_equal(one.weights[0], again.weights[0]) and not np.array_equal(one.weights[0], other.weights[0])
    assert (one.weights[0].sum(1) == 8).all() and one.weights[0].shape == (100, 8)
    two = ResamplePlan.draw({0: 8, 1: 9}, 100, 0, "t")
    assert sum(len(w) for w in two.weights.values()) == 200 and (two.weights[1].sum(1) == 9).all()
    assert cell_id("x") != cell_id("y")


def test_missing_predictions_leave_a_configuration_untested_and_say_so(tmp_path):
    rng = np.random.default_rng(10)
    y = rng.integers(0, 2, 40)
    write_task(tmp_path, patients(20), y, {A: [y, y], B: [_noisy(y, 0.7, rng), _noisy(y, 0.7, rng)]})
    (tmp_path / "predictions" / f"{cell_id('demo', 'moisture', *B)}_s1.parquet").unlink()
    stats = leaderboard_stats(read_results(tmp_path), n_boot=200)
    assert pd.isna(_config(stats, B[0])["verdict"]) and _config(stats, A[0])["verdict"] == "above_chance"
    assert any("1 successful run(s) have no stored predictions" in w for w in stats.warnings)


def test_predictions_of_one_split_must_share_their_test_part(tmp_path):
    y = np.repeat([0, 1], 2).repeat(1).tolist() * 5
    y = np.array(y)  # patients hold (0, 0) or (1, 1): flipping the labels changes every patient
    write_task(tmp_path / "a", patients(10), y, {A: [y]})
    write_task(tmp_path / "b", patients(10), 1 - y, {B: [y]})  # same dummy cells, other labels
    merged = pd.concat([read_results(tmp_path / "a"), read_results(tmp_path / "b")[lambda r: r["backbone"] != "-"]])
    with pytest.raises(DataError, match="test patients or labels differ"):
        leaderboard_stats(merged, n_boot=10)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(6, 30), st.sampled_from([(30, 10), (10, 30, 5), (25, 25), (40, 5, 5)]))
def test_a_constant_majority_predictor_is_never_above_chance(tmp_path_factory, seed, n_patients, train_counts):
    """Whatever the test labels and subgroups, always predicting the training majority is never called above
    chance, overall or in any subgroup (it equals the most-frequent dummy), though it may beat the stratified one."""
    rng = np.random.default_rng(seed)
    k = len(train_counts)
    groups = patients(n_patients)
    y = rng.choice(k, len(groups), p=rng.dirichlet(np.ones(k)))
    tone = np.repeat(rng.choice(["I-II", "III-IV", "V-VI"], n_patients), 2)
    majority = np.full(len(y), int(np.argmax(train_counts)))
    run = write_task(tmp_path_factory.mktemp("constant"), groups, y, {
        ("constant", "none", "logreg"): [majority, majority], ("noise", "none", "logreg"): [rng.integers(0, k, len(y))]
    }, classes=tuple("abcde"[:k]), train_counts=train_counts, columns={"skin_tone": list(tone)})
    results = read_results(run)
    constant = _config(leaderboard_stats(results, n_boot=200), "constant")
    assert constant["verdict"] != "above_chance" and constant["delta_vs_best_dummy"] <= 1e-12
    by_tone = subgroup_stats(results, "skin_tone", n_boot=200, min_n=1)
    rows = by_tone[by_tone["backbone_label"] == "constant"]
    assert not (rows["delta_vs_best_dummy_ci_low"] > 0).any()
