"""Grouped bar chart of mean macro-F1 per task against the stratified chance line (thesis Figure 5.1)."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from skinbench.api import SkinbenchError
from skinbench.store import DUMMY_HEADS

from .tables import aggregate, read_results

CONFIG_LABELS = ["backbone_label", "head_label", "augmenter_label"]
PLOT_CAPTION = ("Mean macro-F1 per task of the best configurations (error bars: sample std over seeds; "
                "dashed black line: stratified chance baseline)")


def write_plot(run_dir: str | Path, out_png: str | Path, top: int = 4) -> Path:
    """Draw the chart for one run directory's stored results into ``out_png``."""
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    plot_results(read_results(run_dir), out_png, top=top)
    return out_png


def has_model_cells(results: pd.DataFrame) -> bool:
    return bool(((results["status"] == "ok") & ~results["head"].isin(DUMMY_HEADS)).any())


def plot_results(results: pd.DataFrame, out: str | Path | BinaryIO, top: int = 4) -> None:
    """Draw the chart of raw results rows into a PNG path or binary file object.

    The ``top`` configurations (backbone + head + augmenter) are those with the
    highest mean Δ macro-F1 over the stratified dummy across tasks, so tasks with
    different chance levels weigh alike.
    """
    if not has_model_cells(results):
        raise SkinbenchError("nothing to plot: no successful non-dummy run in the results")
    cells = aggregate(results)
    cells["x_label"] = _task_labels(cells)
    models = cells[~cells["head"].isin(DUMMY_HEADS)].dropna(subset=["macro_f1_mean"])
    configs = _best_configs(models, top)
    tasks = list(pd.unique(cells["x_label"]))
    figure = _bar_chart(models, configs, tasks, _stratified_by_task(cells))
    figure.savefig(out, format="png", dpi=120, bbox_inches="tight")


def _task_labels(cells: pd.DataFrame) -> pd.Series:
    """Task names, prefixed by the dataset when several datasets are plotted together."""
    if cells["dataset"].nunique() > 1:
        return cells["dataset"].astype(str) + "/" + cells["task"].astype(str)
    return cells["task"].astype(str)


def _best_configs(models: pd.DataFrame, top: int) -> list[tuple]:
    score = "delta_vs_stratified" if models["delta_vs_stratified"].notna().any() else "macro_f1_mean"
    ranking = models.groupby(CONFIG_LABELS, sort=False)[score].mean().sort_values(ascending=False, kind="stable")
    return list(ranking.index[:top])


def _stratified_by_task(cells: pd.DataFrame) -> dict:
    return cells.dropna(subset=["stratified_macro_f1"]).groupby("x_label")["stratified_macro_f1"].first().to_dict()


def _bar_chart(models: pd.DataFrame, configs: list[tuple], tasks: list[str], chance: dict) -> Figure:
    figure = Figure(figsize=(max(6.0, 1.4 * len(tasks) * max(1, len(configs)) ** 0.5), 4.5))
    axes = figure.subplots()
    positions = np.arange(len(tasks))
    width = 0.8 / len(configs)
    cells_by_config = dict(list(models.groupby(CONFIG_LABELS, sort=False)))
    for index, config in enumerate(configs):
        by_task = cells_by_config[config].set_index("x_label").reindex(tasks)
        axes.bar(positions - 0.4 + width * (index + 0.5), by_task["macro_f1_mean"], width,
                 yerr=by_task["macro_f1_std"].fillna(0.0), capsize=3, label=" + ".join(map(str, config)))
    chance_label = "stratified chance"
    for position, task in enumerate(tasks):
        if task in chance:
            axes.hlines(chance[task], position - 0.45, position + 0.45, colors="black", linestyles="--",
                        label=chance_label)
            chance_label = None  # a single legend entry
    axes.set_xticks(positions, tasks, rotation=20 if len(tasks) > 4 else 0)
    axes.set_ylabel("macro-F1 (mean over seeds)")
    axes.set_ylim(0, 1.05)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize="small", frameon=False)
    return figure
