"""The leaderboard's tables as frames: configurations with intervals and verdicts, ties, augmentation effects,
sizes and power per task, and the parts of the variance."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from skinbench.vocabulary import (
    DUMMY_HEADS,
    EFFECTS,
    LABEL_METRICS,
    METRICS,
    MIN_TEST_IMAGES,
    REAL_ONLY,
    STRATIFIED,
    VERDICTS,
)

from .bootstrap import CellDraws, N_BOOT, bootstrap_task, leaderboard_metrics, task_plan
from .inference import ALPHA, _direction, directional_holm, holm, minimum_detectable_delta
from .predictions import TaskPredictions, full_data, load_predictions
from .ranks import RankStats, rank_stats
from .variance import variance_frame

CELL_KEYS = (
    "dataset", "task", "backbone", "augmenter", "head",
    "backbone_label", "augmenter_label", "head_label", "cell_id",
)
"""A configuration's identity; seeds and splits are aggregated away."""


# ---------------------------------------------------------------- descriptive aggregate over seeds


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: mean/std/n of every stored metric over its successful rows.

    Descriptive only (std is the sample std over seeds and splits, ddof=1); the intervals, Δs and
    verdicts the leaderboard prints come from :func:`configuration_stats`. The Δ columns compare the
    mean macro-F1 with the task's stored stratified and best dummy means.
    """
    results = full_data(results)
    flags = results.assign(n_ok=results["status"].eq("ok").astype(int), n_failed=results["status"].ne("ok").astype(int))
    counts = flags.groupby("cell_id", sort=False)[["n_ok", "n_failed"]].sum()  # a cell id fixes every other key
    ok = results[results["status"] == "ok"].astype({m: float for m in METRICS if m in results})
    metrics = [m for m in METRICS if m in ok]
    stats = ok.groupby("cell_id", sort=False)[metrics].agg(["mean", "std", "count"])
    stats.columns = [f"{metric}_{stat if stat != 'count' else 'n'}" for metric, stat in stats.columns]
    keys = results.drop_duplicates("cell_id").set_index("cell_id")[[k for k in CELL_KEYS if k != "cell_id"]]
    cells = keys.join(counts).join(stats, how="left").reset_index()[[*CELL_KEYS, *counts.columns, *stats.columns]]
    dummies = cells[cells["head"].isin(DUMMY_HEADS)]
    per_task = dummies.pivot_table(index=["dataset", "task"], columns="head", values="macro_f1_mean", aggfunc="max")
    baselines = pd.DataFrame({
        "stratified_macro_f1": per_task.get(STRATIFIED, pd.Series(np.nan, index=per_task.index)),
        "best_dummy_macro_f1": per_task.max(axis=1),
    }, index=per_task.index).reset_index()
    cells = cells.merge(baselines, on=["dataset", "task"], how="left")
    cells["delta_vs_stratified"] = cells["macro_f1_mean"] - cells["stratified_macro_f1"]
    cells["delta_vs_best_dummy"] = cells["macro_f1_mean"] - cells["best_dummy_macro_f1"]
    return cells


# ---------------------------------------------------------------- the leaderboard's statistics


@dataclass
class LeaderboardStats:
    """Everything the leaderboard prints, from one bootstrap of every task (see the module docstring)."""

    configurations: pd.DataFrame   # one row per configuration (dummies included)
    augmentation: pd.DataFrame     # one row per (augmenter ≠ none, matched 'none') pair
    tasks: pd.DataFrame            # per task: sizes, minimum detectable Δ, warnings
    class_counts: pd.DataFrame     # per task, split and class: training and test images
    variance: pd.DataFrame         # per task: seed, split and test-sampling parts of the variance
    warnings: list[str]
    n_boot: int
    n_models: int                  # model configurations in the verdicts' Holm family
    ranks: RankStats | None = field(default=None)  # rank stability on the same resamples (:mod:`.ranks`)


def leaderboard_stats(results: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0,
                      alpha: float = ALPHA) -> LeaderboardStats:
    """Intervals, verdicts, ties, augmentation effects, sizes and variance parts of raw result rows.

    ``results`` are rows from :func:`skinbench.leaderboard.read_results` (or several merged), which
    record the run directory of each row so its stored predictions can be read. The last few answers
    are kept: ``skinbench run`` renders a page, a chart and a table from the same rows, and the
    bootstrap need not run three times (a changed row or predictions folder is a new question).
    """
    results = full_data(results)
    key = _question(results, n_boot, seed, alpha)
    if key not in _ANSWERS:
        while len(_ANSWERS) >= 4:
            _ANSWERS.pop(next(iter(_ANSWERS)))
        _ANSWERS[key] = _leaderboard_stats(results, n_boot, seed, alpha)
    return _ANSWERS[key]


_ANSWERS: dict[tuple, LeaderboardStats] = {}


def _question(results: pd.DataFrame, n_boot: int, seed: int, alpha: float) -> tuple:
    """What :func:`leaderboard_stats` answers depends on: the rows and the state of their predictions folders."""
    columns = [c for c in ("cell_id", "seed", "split", "fold", "status", "run_dir", "data_fingerprint", "head")
               if c in results]
    rows = int(pd.util.hash_pandas_object(results[columns].astype(str), index=False).sum()) if len(results) else 0
    folders = []
    for run_dir in sorted(set(results.get("run_dir", pd.Series(dtype=str)).astype(str))):
        predictions = Path(run_dir) / "predictions"
        folders.append((run_dir, predictions.stat().st_mtime_ns if predictions.exists() else 0))
    return rows, len(results), tuple(folders), n_boot, seed, alpha


def _leaderboard_stats(results: pd.DataFrame, n_boot: int, seed: int, alpha: float) -> LeaderboardStats:
    predictions = load_predictions(results)
    boots = {}
    for key, task in predictions.items():
        if task.files:
            boots[key] = bootstrap_task(task, task_plan(task, n_boot, seed), leaderboard_metrics(task.ordinal), seed)
    configurations = _configuration_frame(aggregate(results), boots, alpha)
    ranks = rank_stats(configurations, boots, alpha)
    configurations = configurations.merge(ranks.configurations, on="cell_id", how="left")
    n_models = int(configurations["verdict"].notna().sum())
    tasks, counts, warned = _task_frame(results, predictions, boots, configurations, alpha, n_models)
    return LeaderboardStats(
        configurations=configurations,
        augmentation=_augmentation_frame(configurations, boots, alpha),
        tasks=tasks, class_counts=counts, variance=variance_frame(configurations, boots, results),
        warnings=warned, n_boot=n_boot, n_models=n_models, ranks=ranks,
    )


def configuration_stats(results: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """One row per configuration: ``<metric>_mean`` / ``_ci_low`` / ``_ci_high`` for every label metric,
    ``delta_vs_stratified`` and ``delta_vs_best_dummy`` with intervals, their one-sided p-values
    (``p_vs_…``, H0: Δ ≤ 0) Holm-corrected (``p_vs_…_holm``), ``verdict`` and ``tied_with_best``, plus the
    descriptive seed columns of :func:`aggregate`. Dummy rows carry their own scores and no verdict.

    The verdict is ``above_chance`` when Δ vs the *best* dummy (most-frequent, uniform or stratified,
    whichever scores highest) is above 0 and ``below_chance`` when Δ vs stratified is below 0, Holm over
    both directions of every model configuration: a constant predictor equals the most-frequent dummy,
    so it is never above chance, however skewed the test labels."""
    return leaderboard_stats(results, n_boot, seed).configurations


def augmentation_effects(results: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Per model configuration with an augmenter: paired macro-F1 gain over the same backbone, head and
    task with augmenter ``none``, its interval, Holm-corrected p-values and ``effect``."""
    return leaderboard_stats(results, n_boot, seed).augmentation


def task_summary(results: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Per task: test patients and images, splits, seeds, runs, minimum detectable Δ and warnings."""
    return leaderboard_stats(results, n_boot, seed).tasks


def variance_components(results: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Per task: how the variance of one evaluation's macro-F1 divides into seed, split and test sampling."""
    return leaderboard_stats(results, n_boot, seed).variance


def _configuration_frame(cells: pd.DataFrame, boots: dict, alpha: float) -> pd.DataFrame:
    cells = cells.copy()
    draws = [boots.get((d, t), {}).get(c) for d, t, c in zip(cells["dataset"], cells["task"], cells["cell_id"])]
    for metric in LABEL_METRICS:
        estimates = [d.estimate(metric, alpha) if d is not None else None for d in draws]
        cells[f"{metric}_mean"] = [e.value if e else m for e, m in zip(estimates, cells[f"{metric}_mean"])]
        cells[f"{metric}_ci_low"] = [e.low if e else np.nan for e in estimates]
        cells[f"{metric}_ci_high"] = [e.high if e else np.nan for e in estimates]
    baselines = {key: _baselines(cells, key, task_draws) for key, task_draws in boots.items()}
    rows = []
    for key, head, cell in zip(zip(cells["dataset"], cells["task"]), cells["head"], draws):
        row = {}
        if baselines.get(key) is not None:
            stratified, best_name, best = baselines[key]
            row.update(stratified_macro_f1=stratified.point["macro_f1"], best_dummy=best_name,
                       best_dummy_macro_f1=best.point["macro_f1"])
            if cell is not None and head not in DUMMY_HEADS:
                for name, baseline in (("stratified", stratified), ("best_dummy", best)):
                    delta = cell.minus(baseline, alpha=alpha)
                    row.update({f"delta_vs_{name}": delta.value, f"delta_vs_{name}_ci_low": delta.low,
                                f"delta_vs_{name}_ci_high": delta.high})
                    row.update({f"p_vs_{name}": delta.p_greater, f"p_below_{name}": delta.p_less})
        rows.append(row)
    columns = ["stratified_macro_f1", "best_dummy", "best_dummy_macro_f1", "delta_vs_stratified",
               "delta_vs_stratified_ci_low", "delta_vs_stratified_ci_high", "delta_vs_best_dummy",
               "delta_vs_best_dummy_ci_low", "delta_vs_best_dummy_ci_high", "p_vs_stratified", "p_below_stratified",
               "p_vs_best_dummy", "p_below_best_dummy"]
    tests = pd.DataFrame(rows, columns=columns, index=cells.index)
    cells = pd.concat([cells.drop(columns=[c for c in columns if c in cells]), tests], axis=1)
    cells["p_vs_stratified_holm"], cells["p_below_stratified_holm"] = directional_holm(
        cells["p_vs_stratified"].to_numpy(float), cells["p_below_stratified"].to_numpy(float), alpha)
    up, down = directional_holm(cells["p_vs_best_dummy"].to_numpy(float), cells["p_below_stratified"].to_numpy(float),
                                alpha)
    cells["p_vs_best_dummy_holm"], cells["p_below_chance_holm"] = up, down
    cells["verdict"] = [_direction(u, d, alpha, VERDICTS) for u, d in zip(up, down)]
    return _with_ties(cells, boots, alpha)


def _baselines(cells: pd.DataFrame, key: tuple[str, str], task_draws: dict[str, CellDraws]):
    """(stratified draws, best dummy's head, best dummy draws) of one task, or None without dummies.

    The best dummy is chosen on the point estimates, then compared on every resample: taking the
    maximum per resample would bias the baseline upwards.
    """
    dummies = cells[(cells["dataset"] == key[0]) & (cells["task"] == key[1]) & cells["head"].isin(DUMMY_HEADS)
                    & cells["cell_id"].isin(list(task_draws))]
    if STRATIFIED not in set(dummies["head"]):
        return None
    by_head = dict(zip(dummies["head"], dummies["cell_id"]))
    best = max(by_head, key=lambda head: task_draws[by_head[head]].point["macro_f1"])
    return task_draws[by_head[STRATIFIED]], best, task_draws[by_head[best]]


def _with_ties(cells: pd.DataFrame, boots: dict, alpha: float) -> pd.DataFrame:
    """``tied_with_best``: not distinguishable from the task's best model configuration.

    Paired one-sided test of best − other (H0: ≤ 0) for every other configuration of the task,
    Holm-corrected within the task; the best is tied with itself.
    """
    cells["p_vs_best_holm"] = np.nan
    cells["tied_with_best"] = pd.Series([None] * len(cells), index=cells.index, dtype=object)
    models = cells[cells["verdict"].notna()]
    for key, group in models.groupby(["dataset", "task"], sort=False):
        task_draws = boots[key]
        best = group["macro_f1_mean"].idxmax()
        others = [i for i in group.index if i != best]
        leader = task_draws[cells.at[best, "cell_id"]]
        adjusted = holm(np.array([leader.minus(task_draws[cells.at[i, "cell_id"]], alpha=alpha).p_greater
                                  for i in others]), alpha)
        cells.loc[others, "p_vs_best_holm"] = adjusted
        for index, p in zip(others, adjusted):
            cells.at[index, "tied_with_best"] = bool(p >= alpha)
        cells.at[best, "tied_with_best"] = True
    return cells


def _augmentation_frame(configurations: pd.DataFrame, boots: dict, alpha: float) -> pd.DataFrame:
    """Each augmenter against ``none`` with the same dataset, task, backbone and head, paired."""
    models = configurations[configurations["verdict"].notna()]
    keys = ["dataset", "task", "backbone_label", "head_label"]
    real = models[models["augmenter"] == REAL_ONLY]
    pairs = models[models["augmenter"] != REAL_ONLY].merge(real[keys + ["cell_id", "macro_f1_mean"]], on=keys,
                                                            suffixes=("", "_real"))
    columns = [*keys, "augmenter_label", "cell_id", "cell_id_real", "macro_f1_mean", "reference_macro_f1",
               "gain", "gain_ci_low", "gain_ci_high", "p_helps", "p_hurts"]
    rows = []
    for pair in pairs.itertuples(index=False):
        task_draws = boots[(pair.dataset, pair.task)]
        gain = task_draws[pair.cell_id].minus(task_draws[pair.cell_id_real], alpha=alpha)
        rows.append([*(getattr(pair, k) for k in (*keys, "augmenter_label", "cell_id", "cell_id_real")),
                     pair.macro_f1_mean, pair.macro_f1_mean_real, gain.value, gain.low, gain.high,
                     gain.p_greater, gain.p_less])
    frame = pd.DataFrame(rows, columns=columns)
    up, down = directional_holm(frame["p_helps"].to_numpy(float), frame["p_hurts"].to_numpy(float), alpha)
    frame["p_helps_holm"], frame["p_hurts_holm"] = up, down
    frame["effect"] = [_direction(u, d, alpha, EFFECTS) for u, d in zip(up, down)]
    return frame


# ---------------------------------------------------------------- sizes, power, warnings


def _task_frame(results: pd.DataFrame, predictions: dict, boots: dict, configurations: pd.DataFrame,
                alpha: float, n_models: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per task: sizes and the minimum detectable Δ; per (task, split, class): image counts; warnings.

    Training counts are the stratified dummy's stored prior × its ``n_train`` (the dummy saw the
    whole training part of the real images: fit and validation, no synthetic images).
    """
    rows, counts, warned = [], [], []
    for (dataset, task), group in results.groupby(["dataset", "task"], sort=False):
        loaded = predictions.get((dataset, task))
        ok = group[group["status"] == "ok"]
        models = configurations[(configurations["dataset"] == dataset) & (configurations["task"] == task)
                                & configurations["verdict"].notna()]
        scale, n_patients = _delta_scale(models, boots.get((dataset, task), {}), ok)
        where = f"{dataset}/{task}"
        task_counts = _class_counts(loaded, ok) if loaded is not None else []
        counts += [{"dataset": dataset, "task": task, **c} for c in task_counts]
        for c in task_counts:
            if c["n_train"] == 0:
                warned.append(f"{where}: class '{c['class']}' has no training image (split {c['split']}); "
                              "no head can learn it from real images")
            if c["n_test"] < MIN_TEST_IMAGES:
                warned.append(f"{where}: class '{c['class']}' has {c['n_test']} test image(s) (split {c['split']}); "
                              f"fewer than {MIN_TEST_IMAGES} make its F1 and the task's macro-F1 volatile")
        if loaded is not None and loaded.missing:
            warned.append(f"{where}: {len(loaded.missing)} successful run(s) have no stored predictions "
                          f"(e.g. {loaded.missing[0]}); their configurations are shown without intervals or verdict")
        patients = [len(p) for p in loaded.patients.values()] if loaded is not None else []
        tested = ok.groupby(["cell_id", "seed", "split"])["n_test"].sum(min_count=1)  # under cv: over the folds
        rows.append({
            "dataset": dataset, "task": task, "n_classes": _first(ok["n_classes"]),
            "classes": list(loaded.classes) if loaded is not None else [],
            "n_splits": int(group["split"].nunique()), "n_folds": int(group["fold"].nunique()),
            "n_seeds": int(group["seed"].nunique()),
            "runs_ok": len(ok), "runs_failed": len(group) - len(ok),
            "test_patients_min": min(patients, default=np.nan), "test_patients_max": max(patients, default=np.nan),
            "test_images_min": _first(tested, min), "test_images_max": _first(tested, max),
            "n_synthetic_min": _first(ok["n_synthetic"], min), "n_synthetic_max": _first(ok["n_synthetic"], max),
            "delta_scale": scale,
            "mde_delta": minimum_detectable_delta(scale, n_patients, alpha),
            "mde_delta_holm": minimum_detectable_delta(scale, n_patients, alpha, n_tests=2 * max(n_models, 1)),
            "mde_delta_holm_holdout": _holdout_mde(loaded, scale, n_patients, alpha, 2 * max(n_models, 1)),
        })
    return pd.DataFrame(rows), pd.DataFrame(counts, columns=["dataset", "task", "split", "class", "n_train", "n_test"]), warned


def _holdout_mde(loaded: TaskPredictions | None, scale: float, n_patients: int, alpha: float, n_tests: int,
                 test_fraction: float = 0.2) -> float:
    """Under cv: the minimum detectable Δ (Holm's first step) that a holdout of ``test_fraction`` of the same
    patients would have, projected from this run (the bootstrap SE of a patient mean grows as √(n / n_test);
    the cv variance inflation and the n − 1 expansion are replaced by the holdout's). NaN under holdout."""
    if loaded is None or not loaded.cv or not np.isfinite(scale) or n_patients < 2:
        return np.nan
    n_test = max(2, int(np.ceil(test_fraction * n_patients)))
    raw = scale / np.sqrt(n_patients / (n_patients - 1) * loaded.variance_inflation())
    holdout_scale = raw * np.sqrt(n_patients / n_test) * np.sqrt(n_test / (n_test - 1))
    return minimum_detectable_delta(holdout_scale, n_test, alpha, n_tests=n_tests)


def _delta_scale(models: pd.DataFrame, task_draws: dict, ok: pd.DataFrame) -> tuple[float, int]:
    """Median over the task's model configurations of the expanded bootstrap SE of Δ vs stratified."""
    stratified = ok.loc[ok["head"] == STRATIFIED, "cell_id"]
    if stratified.empty or stratified.iloc[0] not in task_draws:
        return np.nan, 0
    base = task_draws[stratified.iloc[0]]
    cells = [task_draws[c] for c in models["cell_id"] if c in task_draws]
    if not cells or base.n_patients < 2:
        return np.nan, 0
    expansion = np.sqrt(base.n_patients / (base.n_patients - 1) * base.inflation)
    spreads = [np.nanstd(c.draws["macro_f1"] - base.draws["macro_f1"], ddof=1) * expansion for c in cells]
    return float(np.median(spreads)), base.n_patients


def _class_counts(loaded: TaskPredictions, ok: pd.DataFrame) -> list[dict]:
    """Per split and class: test images (all patients under cv) and training images (per fold under cv)."""
    stratified = ok[ok["head"] == STRATIFIED].assign(fold=lambda d: d.get("fold", 0))
    out = []
    for split, files in loaded.files.items():
        reference = next(iter(files.values()))
        test = np.bincount(reference.y, minlength=len(loaded.classes))
        train = np.full(len(loaded.classes), -1)
        rows = stratified[stratified["split"] == split]
        for (cell_id, seed), runs in rows.groupby(["cell_id", "seed"], sort=False):
            stored = files.get((cell_id, int(seed)))
            if stored is not None and runs["n_train"].notna().all():  # under cv: the mean over the outer folds
                per_fold = [stored.prior[stored.folds.index(int(r.fold))] * r.n_train for r in runs.itertuples()]
                train = np.rint(np.mean(per_fold, axis=0)).astype(int)
                break
        out += [{"split": split, "class": c, "n_train": int(n) if n >= 0 else np.nan, "n_test": int(t)}
                for c, n, t in zip(loaded.classes, train, test)]
    return out


def _first(values: pd.Series, reduce: Callable | None = None) -> float:
    """The first (or ``reduce``d) number of a column as an int, NaN when it has none."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return np.nan
    return int(reduce(values) if reduce else values.iloc[0])
