"""The leaderboard by subgroup (skin tone, region, sex, age): tables and a chart of
:func:`skinbench.leaderboard.stats.subgroup_stats`, from the stored predictions alone.

It answers whether a configuration that beats chance overall does so for darker skin too:
macro-F1 over all the task's classes per subgroup, that subgroup's own chance level, and the gap
between the best and the worst subgroup, each with a patient-bootstrap interval.
"""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from skinbench.api import SkinbenchError

from .stats import MIN_SUBGROUP_N, N_BOOT
from skinbench.vocabulary import MISSING, format_interval, format_number

from .layout import Report, Section, Table
from .tables import interval_text

CONFIG_COLUMNS = ("task", "backbone_label", "augmenter_label", "head_label")


def subgroup_report(scores: pd.DataFrame, column: str, n_boot: int = N_BOOT, min_n: int = MIN_SUBGROUP_N,
                    digits: int = 2) -> Report:
    """Per dataset: macro-F1 and Δ vs chance per subgroup with the worst-group gap, and the chance levels."""
    note = (f"{interval_text(n_boot)} in the subgroup; no multiplicity correction; subgroups with fewer than "
            f"{min_n} test images are not scored")
    sections, warned = [], []
    for dataset, part in scores.groupby("dataset", sort=False):
        values = sorted(pd.unique(part[column]))
        sections.append(Section(title=f"Dataset {dataset}", tables=[
            _score_table(part, column, values, "macro_f1_mean", "macro-F1", note, digits, gap=True),
            _score_table(part, column, values, "delta_vs_best_dummy", "Δ vs best dummy", note, digits),
            _chance_table(part, column, values, digits),
        ]))
        small = part[~part["enough"]].drop_duplicates(["task", column])
        warned += [f"{dataset}/{row.task}: {column} '{getattr(row, column)}' has {row.n_images} test image(s) "
                   f"(fewer than {min_n}); it is not scored" for row in small.itertuples(index=False)]
    return Report(sections=sections, warnings=warned, frame=scores)


def _score_table(scores: pd.DataFrame, column: str, values: list, metric: str, name: str, note: str, digits: int,
                 gap: bool = False) -> Table:
    signed = metric.startswith("delta")
    rows = []
    for (task, backbone, augmenter, head), config in scores.groupby(list(CONFIG_COLUMNS), sort=False):
        row = {"task": task, "backbone": backbone, "augmenter": augmenter, "head": head}
        by_value = config.set_index(column)
        for value in values:
            row[str(value)] = _subgroup_text(by_value.loc[value], metric, digits, signed) if value in by_value.index \
                else MISSING
        if gap:
            first = config.iloc[0]
            text = format_interval(first["worst_group_gap"], first["worst_group_gap_ci_low"],
                                   first["worst_group_gap_ci_high"], digits)
            row["worst-group gap"] = text if text == MISSING else f"{text} ({first['best_group']} − {first['worst_group']})"
        rows.append(row)
    caption = (f"{name} per {column}, macro-F1 averaged over all the task's classes (a class absent from a subgroup "
               "and never predicted there counts 0, so a constant predictor cannot score 1)"
               + ("; worst-group gap: best − worst scored subgroup, chosen on the estimates and compared on the "
                  "same resamples" if gap else "; Δ against the subgroup's best dummy (most-frequent, uniform or "
                  "stratified, chosen on that subgroup) on the same subgroup and resamples, so a constant predictor "
                  "is never above chance") + f". {note}.")
    return Table(title=f"{name} by {column}", caption=caption, frame=pd.DataFrame(rows))


def _subgroup_text(row: pd.Series, metric: str, digits: int, signed: bool) -> str:
    if not row["enough"]:
        return f"n={row['n_images']}, too few"
    low, high = (f"{metric}_ci_low", f"{metric}_ci_high") if signed else ("macro_f1_ci_low", "macro_f1_ci_high")
    return format_interval(row[metric], row[low], row[high], digits, signed)


def _chance_table(scores: pd.DataFrame, column: str, values: list, digits: int) -> Table:
    rows = []
    for task, part in scores.groupby("task", sort=False):
        by_value = part.drop_duplicates(column).set_index(column)
        row = {"task": task}
        for value in values:
            if value not in by_value.index:
                row[str(value)] = MISSING
                continue
            group = by_value.loc[value]
            row[str(value)] = (f"{format_number(group['chance_macro_f1'], digits)} {group['chance_dummy']} "
                               f"(n={group['n_images']}, {group['n_patients']} patients)")
        rows.append(row)
    return Table(title=f"Chance and sizes by {column}",
                 caption=f"Expected macro-F1 over all classes of the best dummy on each {column} (named), with the "
                         "subgroup's test images and patients (smallest over splits); point values, no interval "
                         "or correction.",
                 frame=pd.DataFrame(rows))


def plot_subgroups(scores: pd.DataFrame, column: str, out: str | Path | BinaryIO) -> None:
    """Bars of each task's best configuration per subgroup, with intervals and that subgroup's chance level.

    The best configuration is the one with the highest mean macro-F1 over the scored subgroups.
    """
    scored = scores[scores["enough"]]
    if scored.empty:
        raise SkinbenchError(f"nothing to plot: no {column} subgroup has enough test images")
    tasks = list(pd.unique(scored["task"]))
    figure = Figure(figsize=(max(4.0, 3.0 * len(tasks)), 3.6))
    axes = np.atleast_1d(figure.subplots(1, max(1, len(tasks)), sharey=True, squeeze=False)[0])
    for axis, task in zip(axes, tasks):
        part = scored[scored["task"] == task]
        ranking = part.groupby(list(CONFIG_COLUMNS), sort=False)["macro_f1_mean"].mean()
        best = part.set_index(list(CONFIG_COLUMNS)).loc[ranking.idxmax()].reset_index(drop=True)
        positions = np.arange(len(best))
        errors = [best["macro_f1_mean"] - best["macro_f1_ci_low"], best["macro_f1_ci_high"] - best["macro_f1_mean"]]
        axis.bar(positions, best["macro_f1_mean"], yerr=errors, capsize=3, color="#4c72b0")
        axis.hlines(best["chance_macro_f1"], positions - 0.4, positions + 0.4, colors="black", linestyles="--")
        axis.set_xticks(positions, best[column].astype(str), rotation=20 if len(best) > 3 else 0)
        axis.set_title(f"{task}\n{' / '.join(map(str, ranking.idxmax()[1:]))}", fontsize=8)
        axis.set_ylim(0, 1.05)
    axes[0].set_ylabel(f"macro-F1 by {column} (95% CI)")
    figure.text(0.0, -0.02, "Dashed: the subgroup's chance level (its best dummy); only subgroups with enough test images.",
                fontsize=7, va="top")
    figure.savefig(out, format="png", dpi=120, bbox_inches="tight")
