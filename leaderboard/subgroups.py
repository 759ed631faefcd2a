"""Scores per subgroup (skin tone, region, sex, age) from the stored per-sample predictions.

New metrics from stored predictions, without re-running any model: a leaderboard can say
whether a configuration that beats chance overall does so for darker skin too.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from skinbench.api import SkinbenchError
from skinbench.store import DUMMY_HEADS

from .tables import read_results

LABEL_COLUMNS = ("dataset", "task", "backbone_label", "augmenter_label", "head_label")


def subgroup_scores(run_dir: str | Path, column: str) -> pd.DataFrame:
    """One row per (cell, seed, subgroup value): n, macro-F1 and accuracy on that part of the test set."""
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    rows = []
    for _, row in results[(results["status"] == "ok") & ~results["head"].isin(DUMMY_HEADS)].iterrows():
        path = run_dir / "predictions" / f"{row['cell_id']}_s{int(row['seed'])}.parquet"
        if not path.exists():
            continue
        pred = pd.read_parquet(path)
        if column not in pred:
            continue
        for value, part in pred.groupby(column):
            rows.append({**{k: row[k] for k in LABEL_COLUMNS}, "seed": int(row["seed"]), column: value,
                         "n": len(part),
                         "macro_f1": f1_score(part["y_true"], part["y_pred"], average="macro", zero_division=0),
                         "accuracy": accuracy_score(part["y_true"], part["y_pred"])})
    if not rows:
        raise SkinbenchError(f"{run_dir}: no stored prediction has a '{column}' column; "
                             f"the dataset must provide it (region, skin_tone, sex or age)")
    return pd.DataFrame(rows)


def subgroup_table(scores: pd.DataFrame, column: str, digits: int = 2) -> pd.DataFrame:
    """Mean macro-F1 over seeds per configuration and subgroup, with the subgroup's test size."""
    grouped = scores.groupby([*LABEL_COLUMNS, column]).agg(macro_f1=("macro_f1", "mean"), n=("n", "max")).reset_index()
    grouped["cell"] = [f"{f:.{digits}f} (n={n})" for f, n in zip(grouped["macro_f1"], grouped["n"])]
    table = grouped.pivot_table(index=list(LABEL_COLUMNS), columns=column, values="cell", aggfunc="first")
    return table.reset_index().rename_axis(columns=None)
