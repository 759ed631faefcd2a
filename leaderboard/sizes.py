"""The tables that say what the data can show: sizes and power per task, and the parts of the variance."""
from __future__ import annotations

import pandas as pd
from skinbench.vocabulary import MISSING, format_number

from .layout import Table
from .stats import LeaderboardStats


def sample_size_table(stats: LeaderboardStats, dataset: str, digits: int) -> Table:
    """Per task: what the data can show (sizes per class, seeds, runs, minimum detectable Δ)."""
    rows = []
    counts = stats.class_counts[stats.class_counts["dataset"] == dataset]
    for task in stats.tasks[stats.tasks["dataset"] == dataset].itertuples(index=False):
        per_class = counts[counts["task"] == task.task]
        rows.append({
            "task": task.task, "seeds": task.n_seeds, "splits": task.n_splits, **cv_columns(task, digits),
            "runs ok": task.runs_ok, "runs failed": task.runs_failed,
            "test patients": _range_text(task.test_patients_min, task.test_patients_max),
            "test images": _range_text(task.test_images_min, task.test_images_max),
            "train images per class": _class_text(per_class, "n_train"),
            "test images per class": _class_text(per_class, "n_test"),
            "n_synthetic": _range_text(task.n_synthetic_min, task.n_synthetic_max),
            "detectable Δ": format_number(task.mde_delta, digits),
            "detectable Δ (Holm)": format_number(task.mde_delta_holm, digits),
        })
    cv = any("folds" in row for row in rows)
    return Table(
        title="What the data can show",
        caption="Sizes per task (min–max over splits and cells); training images per class are the stratified "
                "dummy's prior × its training size (real images, fit and validation parts"
                f"{'; under cv the mean over the outer folds, and every patient is a test patient' if cv else ''}). "
                "'Detectable Δ': the smallest true Δ vs stratified found with 80% power by a single one-sided test "
                "at 2.5% given the bootstrap SE of Δ (median over the task's configurations); '(Holm)': at the first "
                f"Holm step over both directions of all {stats.n_models} model configurations"
                f"{HOLDOUT_PROJECTION if cv else ''}. Sizes, no interval or correction.",
        frame=pd.DataFrame(rows),
    )


HOLDOUT_PROJECTION = ("; '(Holm, 20% holdout)': the same for a holdout test part of 20% of these patients, projected "
                      "from this run's SE (√(n / n_test) larger, without the cv correction)")


def cv_columns(task, digits: int) -> dict[str, object]:
    """Under cv: the outer folds, and the projected holdout bar beside the cv one."""
    if task.n_folds <= 1:
        return {}
    return {"folds": task.n_folds, "detectable Δ (Holm, 20% holdout)": format_number(task.mde_delta_holm_holdout, digits)}


def _range_text(low: float, high: float) -> str:
    if pd.isna(low):
        return MISSING
    return str(int(low)) if low == high else f"{int(low)}–{int(high)}"


def _class_text(per_class: pd.DataFrame, column: str) -> str:
    if per_class.empty:
        return MISSING
    spans = per_class.groupby("class", sort=False)[column].agg(["min", "max"])
    return ", ".join(f"{c}: {_range_text(low, high)}" for c, (low, high) in spans.iterrows())


def variance_table(stats: LeaderboardStats, dataset: str, digits: int) -> Table:
    """How the variance of one evaluation's macro-F1 divides into seed, split and test-sampling parts."""
    rows = []
    for part in stats.variance[stats.variance["dataset"] == dataset].itertuples(index=False):
        row = {"task": part.task, "seeds": part.n_seeds, "splits": part.n_splits}
        for name, label in (("seed", "seed"), ("split", "split"), ("test", "test patients")):
            sd, share = getattr(part, f"sd_{name}"), getattr(part, f"share_{name}")
            row[f"SD {label}"] = MISSING if pd.isna(sd) else f"{sd:.{digits}f} ({share:.0%})"
        if pd.notna(part.sd_fold):
            row["SD between folds"] = f"{part.sd_fold:.{digits}f}"
        rows.append(row)
    return Table(
        title="Sources of variance",
        caption="Standard deviation of one (split, seed) evaluation's macro-F1 from each source, mean variance over "
                "the task's model configurations (share of the total in brackets): seed = between seeds on one "
                "split; split = between test splits beyond what seeds and test patients explain (needs "
                "protocol.repeats ≥ 2); test patients = bootstrap over the test patients; between folds (cv) = "
                "SD of one fold's macro-F1 between the outer folds of a run, its own test sampling included (not "
                "a share). Method-of-moments estimates, no interval or correction.",
        frame=pd.DataFrame(rows),
    )
