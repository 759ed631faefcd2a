"""The parts of the variance of one evaluation's macro-F1: test patients, seeds, splits (and, under cv, folds)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .bootstrap import CellDraws, _nanmean


def variance_frame(configurations: pd.DataFrame, boots: dict, results: pd.DataFrame) -> pd.DataFrame:
    """Per task, the parts of the variance of one (split, seed) evaluation's macro-F1, averaged over its
    model configurations (method of moments):

    - test sampling: bootstrap variance over test patients of one evaluation;
    - seed: variance between seeds on the same split (needs ≥ 2 seeds);
    - split: variance between split means beyond what test sampling and seeds explain (needs ≥ 2
      splits, i.e. ``protocol.repeats`` or ``cv_repeats``; approximate, since splits may share test
      patients, and under cv they share all of them).

    Under cv, ``sd_fold`` is the standard deviation of the stored per-fold macro-F1 between the outer
    folds of one (configuration, seed, repeat): descriptive, and it holds each fold's own test
    sampling, so it is not one of the shares.
    """
    rows = []
    models = configurations[configurations["verdict"].notna()]
    fold_sd = _fold_sd(results[results["cell_id"].isin(models["cell_id"])])
    for (dataset, task), group in models.groupby(["dataset", "task"], sort=False):
        parts = np.array([_variance_parts(boots[(dataset, task)][c]) for c in group["cell_id"]])
        seed_var, split_var, test_var = (_nanmean(parts[:, i]) for i in range(3))
        total = np.nansum([seed_var, split_var, test_var]) or np.nan  # no variance at all: no shares
        runs = boots[(dataset, task)][group["cell_id"].iloc[0]].evaluations
        rows.append({"dataset": dataset, "task": task, "n_splits": len({s for s, _ in runs}),
                     "n_seeds": len({r for _, r in runs}),
                     "sd_seed": np.sqrt(seed_var), "sd_split": np.sqrt(split_var), "sd_test": np.sqrt(test_var),
                     "share_seed": seed_var / total, "share_split": split_var / total, "share_test": test_var / total,
                     "sd_fold": fold_sd.get((dataset, task), np.nan)})
    return pd.DataFrame(rows, columns=["dataset", "task", "n_splits", "n_seeds", "sd_seed", "sd_split", "sd_test",
                                       "share_seed", "share_split", "share_test", "sd_fold"])


def _fold_sd(rows: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Per task: √(mean over (configuration, seed, split) of the variance of macro-F1 between outer folds)."""
    ok = rows[(rows["status"] == "ok") & (rows.groupby(["cell_id", "seed", "split"])["fold"].transform("nunique") > 1)]
    if ok.empty:
        return {}
    per_run = ok.groupby(["dataset", "task", "cell_id", "seed", "split"])["macro_f1"].var(ddof=1)
    return {key: float(np.sqrt(v)) for key, v in per_run.groupby(level=["dataset", "task"]).mean().items()}


def _variance_parts(cell: CellDraws, metric: str = "macro_f1") -> tuple[float, float, float]:
    by_split: dict[int, list] = {}
    for (split, _), (point, draws) in cell.evaluations.items():
        by_split.setdefault(split, []).append((point[metric], draws[metric]))
    test = _nanmean(np.array([np.nanvar(d, ddof=1) for runs in by_split.values() for _, d in runs]))
    seeds = [np.var([p for p, _ in runs], ddof=1) for runs in by_split.values() if len(runs) > 1]
    seed = _nanmean(np.array(seeds)) if seeds else np.nan
    if len(by_split) < 2:
        return seed, np.nan, test
    split_means = [np.mean([p for p, _ in runs]) for runs in by_split.values()]
    mean_test = np.mean([np.nanvar(np.mean([d for _, d in runs], axis=0), ddof=1) for runs in by_split.values()])
    n_seeds = np.mean([len(runs) for runs in by_split.values()])
    explained = mean_test + (0 if np.isnan(seed) else seed / n_seeds)
    return seed, max(0.0, float(np.var(split_means, ddof=1) - explained)), test
