"""Macro-F1 per subgroup (skin tone, region, sex, age) against that subgroup's own chance, and the worst-group gap."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from skinbench.api import SkinbenchError
from skinbench.vocabulary import (
    DUMMY_HEADS,
    STRATIFIED,
)

from .bootstrap import N_BOOT, bootstrap_task, macro_f1_over_classes, task_plan
from .frames import CELL_KEYS
from .inference import ALPHA, Estimate
from .predictions import TaskPredictions, full_data, load_predictions

MIN_SUBGROUP_N = 10


# ---------------------------------------------------------------- subgroups


def subgroup_stats(results: pd.DataFrame, column: str, n_boot: int = N_BOOT, seed: int = 0,
                   min_n: int = MIN_SUBGROUP_N, alpha: float = ALPHA) -> pd.DataFrame:
    """Macro-F1 per subgroup (a stored column such as skin_tone) of every model configuration.

    One row per (configuration, subgroup value): test images and patients of the subgroup (the
    smallest over splits), ``enough`` (≥ ``min_n`` images), macro-F1 over *all* the task's classes
    with its interval, the subgroup's chance level (``chance_macro_f1``: its best dummy, ``chance_dummy``)
    and the paired Δ vs that best dummy and vs the stratified dummy, with intervals; per configuration, the worst-group gap (best − worst subgroup among
    those with enough images, chosen on the point estimates) with its interval. Resamples are the
    leaderboard's: the same plan per task, so subgroups and gaps are paired.
    """
    results = full_data(results)
    predictions = load_predictions(results)
    cells = results.drop_duplicates("cell_id").set_index("cell_id")
    rows = []
    for loaded in predictions.values():
        values = _subgroup_values(loaded, column)
        if not values:
            continue
        plan = task_plan(loaded, n_boot, seed)
        per_value = {v: bootstrap_task(loaded, plan, macro_f1_over_classes, seed, _selector(column, v)) for v in values}
        sizes = {v: _subgroup_size(loaded, column, v) for v in values}
        dummies = {str(cells.at[c, "head"]): c for c in per_value[values[0]] if cells.at[c, "head"] in DUMMY_HEADS}
        for cell_id in per_value[values[0]]:
            if cells.at[cell_id, "head"] in DUMMY_HEADS:
                continue
            rows += _subgroup_rows(cells.loc[cell_id], cell_id, column, per_value, sizes, dummies, min_n, alpha)
    if not rows:
        raise SkinbenchError(f"no stored prediction has a '{column}' column; the dataset must provide it "
                             f"(region, skin_tone, sex or age)")
    return pd.DataFrame(rows)


def _subgroup_values(loaded: TaskPredictions, column: str) -> list[str]:
    stored = [f.columns[column] for files in loaded.files.values() for f in files.values() if column in f.columns]
    values = set(np.concatenate(stored)) if stored else set()
    return sorted(values - {"", "nan", "None"})


def _selector(column: str, value: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    def select(columns: dict[str, np.ndarray]) -> np.ndarray:
        return columns[column] == value if column in columns else np.zeros(len(columns["image"]), bool)
    return select


def _subgroup_size(loaded: TaskPredictions, column: str, value: str) -> tuple[int, int]:
    """(images, patients) of the subgroup: the smallest over splits."""
    sizes = []
    for files in loaded.files.values():
        stored = next(iter(files.values()))
        mask = _selector(column, value)(stored.columns)
        sizes.append((int(mask.sum()), len(np.unique(stored.patient[mask]))))
    return min(sizes)


def _subgroup_rows(cell: pd.Series, cell_id: str, column: str, per_value: dict, sizes: dict, dummies: dict[str, str],
                   min_n: int, alpha: float) -> list[dict]:
    scores = {v: draws[cell_id] for v, draws in per_value.items()}
    enough = [v for v in scores if sizes[v][0] >= min_n and np.isfinite(scores[v].point["macro_f1"])]
    gap, best, worst = Estimate(np.nan, np.nan, np.nan, np.nan, np.nan), None, None
    if len(enough) >= 2:
        best = max(enough, key=lambda v: scores[v].point["macro_f1"])
        worst = min(enough, key=lambda v: scores[v].point["macro_f1"])
        gap = scores[best].minus(scores[worst], alpha=alpha)
    rows = []
    none = Estimate(np.nan, np.nan, np.nan, np.nan, np.nan)
    for value, score in scores.items():
        f1 = score.estimate("macro_f1", alpha)
        baselines = {head: per_value[value][c] for head, c in dummies.items()}
        # the subgroup's own best dummy, chosen on its point estimates: in a subgroup holding only the majority
        # class the most-frequent dummy is perfect there, and a constant predictor must not beat chance
        chance = max(baselines, key=lambda h: np.nan_to_num(baselines[h].point["macro_f1"], nan=-1), default=None)
        stratified = baselines.get(STRATIFIED)
        delta = score.minus(stratified, alpha=alpha) if stratified is not None else none
        above = score.minus(baselines[chance], alpha=alpha) if chance is not None else none
        rows.append({
            **{k: cell[k] for k in CELL_KEYS if k != "cell_id"}, "cell_id": cell_id, column: value,
            "n_images": sizes[value][0], "n_patients": sizes[value][1], "enough": sizes[value][0] >= min_n,
            "macro_f1_mean": f1.value, "macro_f1_ci_low": f1.low, "macro_f1_ci_high": f1.high,
            "chance_dummy": chance,
            "chance_macro_f1": baselines[chance].point["macro_f1"] if chance is not None else np.nan,
            "stratified_macro_f1": stratified.point["macro_f1"] if stratified is not None else np.nan,
            "delta_vs_best_dummy": above.value, "delta_vs_best_dummy_ci_low": above.low,
            "delta_vs_best_dummy_ci_high": above.high,
            "delta_vs_stratified": delta.value, "delta_vs_stratified_ci_low": delta.low,
            "delta_vs_stratified_ci_high": delta.high,
            "worst_group_gap": gap.value, "worst_group_gap_ci_low": gap.low, "worst_group_gap_ci_high": gap.high,
            "best_group": best, "worst_group": worst,
        })
    return rows
