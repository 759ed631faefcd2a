"""Likely label errors among the test images, and whether any verdict depends on them.

Skin labels are noisy ("inherited labels"), and with a few dozen test patients two wrong labels move
macro-F1 by more than an interval's width. Per task, the out-of-sample predicted probabilities of the best
configuration (the stored test predictions, averaged over its seeds, splits and cv repeats; under cv every
patient is predicted once by a model that never saw them) go to cleanlab's ``find_label_issues`` (confident
learning: Northcutt, Jiang & Chuang, "Confident learning: estimating uncertainty in dataset labels", JAIR 2021).

The flagged images are then left out of every stored prediction and the leaderboard's statistics are computed
again by the same code (:func:`skinbench.leaderboard.stats.leaderboard_stats`: patient bootstrap, Holm), so the
sensitivity table says which verdicts change without them. It is a sensitivity check, not a correction: the
leaderboard keeps every image, and a flagged image may well be labelled right.
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

SENSITIVITY_NOTE = ("A sensitivity check, not a correction: the leaderboard keeps every image; the verdicts below "
                    "were recomputed (same patient bootstrap and Holm correction) without the images cleanlab "
                    "flags as likely mislabelled, and a flagged image may still be labelled right.")
VERDICT_KEYS = ["dataset", "task", "backbone_label", "augmenter_label", "head_label", "cell_id"]


def label_error_audit(results: pd.DataFrame, n_boot: int | None = None, seed: int = 0) -> dict:
    """``{"note", "tasks": [per task: best configuration, images checked, flagged images], "changed": [verdicts
    that change without the flagged images]}`` for result rows read with ``read_results``."""
    from skinbench.leaderboard.stats import N_BOOT, full_data, leaderboard_stats

    n_boot = n_boot or N_BOOT
    results = full_data(results)  # learning-curve rows are not the leaderboard's verdicts
    configurations = leaderboard_stats(results, n_boot=n_boot, seed=seed).configurations
    models = configurations[configurations["verdict"].notna()]
    tasks, flagged = [], {}
    for (dataset, task), group in models.groupby(["dataset", "task"], sort=False):
        best = group.loc[group["macro_f1_mean"].idxmax()]
        pooled = pooled_probabilities(results[results["cell_id"] == best["cell_id"]])
        issues, problem = likely_label_errors(pooled)
        flagged[(str(dataset), str(task))] = set(issues["image"])
        tasks.append({"dataset": str(dataset), "task": str(task), "best": _configuration_name(best),
                      "cell_id": str(best["cell_id"]), "images": len(pooled), "problem": problem,
                      "flagged": issues.to_dict("records")})
    changed = []
    if any(flagged.values()):
        with tempfile.TemporaryDirectory(prefix="skinbench-audit-") as scratch:
            without = leaderboard_stats(without_images(results, flagged, Path(scratch)), n_boot=n_boot, seed=seed)
        changed = changed_verdicts(models, without.configurations)
    return {"note": SENSITIVITY_NOTE, "n_boot": n_boot, "tasks": tasks, "changed": changed}


def _configuration_name(row: pd.Series) -> str:
    return f"{row['backbone_label']} · {row['augmenter_label']} · {row['head_label']}"


def pooled_probabilities(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per test image of one configuration: its label, patient and probabilities averaged over every
    stored (seed, split, fold) prediction of it (each out-of-sample)."""
    from skinbench.leaderboard.stats import predictions_file

    frames = []
    for row in rows[rows["status"] == "ok"].itertuples(index=False):
        path = predictions_file(row.run_dir, row.cell_id, row.seed, row.split, row.fold)
        if path.exists():
            frames.append(pd.read_parquet(path))
    if not frames:
        return pd.DataFrame(columns=["image", "group", "y_true"])
    stored = pd.concat(frames, ignore_index=True)
    proba = [c for c in stored.columns if c.startswith("proba_")]
    pooled = stored.groupby("image", sort=False).agg({"group": "first", "y_true": "first", **dict.fromkeys(proba, "mean")})
    return pooled.reset_index()


def likely_label_errors(pooled: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The images cleanlab flags, most suspicious first (given label, the label the model prefers and the
    probability it gives the given one), and why none could be judged when that is the case."""
    columns = ["image", "patient", "label", "suggested", "p_given_label"]
    proba_columns = [c for c in pooled.columns if c.startswith("proba_")]
    classes = [c[len("proba_"):] for c in proba_columns]
    labels = pooled["y_true"].astype(str).to_numpy() if len(pooled) else np.array([], str)
    present = [i for i, c in enumerate(classes) if (labels == c).sum() >= 1]
    if len(present) < 2:
        return pd.DataFrame(columns=columns), "fewer than two classes among the predicted test images"
    proba = pooled[proba_columns].to_numpy(float)[:, present]
    proba = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)
    kept = [classes[i] for i in present]
    index = {c: i for i, c in enumerate(kept)}
    y = np.array([index[label] for label in labels])
    from cleanlab.filter import find_label_issues

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cleanlab warns about tiny classes; the counts are reported instead
            ranked = find_label_issues(y, proba, return_indices_ranked_by="self_confidence")
    except (ValueError, IndexError) as exc:
        return pd.DataFrame(columns=columns), f"cleanlab could not judge these predictions ({exc})"
    ranked = np.asarray(ranked, int)
    return pd.DataFrame({"image": pooled["image"].to_numpy()[ranked], "patient": pooled["group"].to_numpy()[ranked],
                         "label": labels[ranked], "suggested": np.array(kept)[proba[ranked].argmax(axis=1)],
                         "p_given_label": np.round(proba[ranked, y[ranked]], 4)}, columns=columns), ""


def without_images(results: pd.DataFrame, flagged: dict[tuple[str, str], set[str]], folder: Path) -> pd.DataFrame:
    """The same rows, reading predictions copied into ``folder`` without each task's flagged images.

    Why copies: the statistics read stored predictions by run directory, and running them unchanged on a
    filtered copy is what makes the sensitivity table the leaderboard's own computation (the originals stay
    untouched)."""
    from skinbench.leaderboard.stats import predictions_file

    shadows = {run_dir: folder / f"run{i}" for i, run_dir in enumerate(pd.unique(results["run_dir"].astype(str)))}
    for row in results[results["status"] == "ok"].itertuples(index=False):
        source = predictions_file(row.run_dir, row.cell_id, row.seed, row.split, row.fold)
        if not source.exists():
            continue
        target = predictions_file(shadows[str(row.run_dir)], row.cell_id, row.seed, row.split, row.fold)
        target.parent.mkdir(parents=True, exist_ok=True)
        table = pq.read_table(source)
        drop = flagged.get((str(row.dataset), str(row.task)), set())
        if drop:
            keep = ~pd.Series(table.column("image").to_pylist()).isin(drop).to_numpy()
            table = table.filter(keep)
        pq.write_table(table, target)
    return results.assign(run_dir=results["run_dir"].astype(str).map(lambda d: str(shadows[d])))


def changed_verdicts(before: pd.DataFrame, after: pd.DataFrame) -> list[dict]:
    """Model configurations whose verdict differs once the flagged images are left out, with both macro-F1s."""
    joined = before[VERDICT_KEYS + ["verdict", "macro_f1_mean"]].merge(
        after[["cell_id", "verdict", "macro_f1_mean"]], on="cell_id", how="left", suffixes=("", "_without"))
    changed = joined[joined["verdict"].astype(str) != joined["verdict_without"].astype(str)]
    return [{"dataset": r.dataset, "task": r.task, "configuration": f"{r.backbone_label} · {r.augmenter_label} · "
             f"{r.head_label}", "cell_id": r.cell_id, "verdict": r.verdict,
             "verdict_without": r.verdict_without if isinstance(r.verdict_without, str) else None,
             "macro_f1": _rounded(r.macro_f1_mean), "macro_f1_without": _rounded(r.macro_f1_mean_without)}
            for r in changed.itertuples(index=False)]


def _rounded(value) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 4)
