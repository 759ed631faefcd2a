"""Grouped bar chart of mean macro-F1 per task against the stratified chance line (thesis Figure 5.1)."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure
from skinbench.api import SkinbenchError
from skinbench.vocabulary import DUMMY_HEADS

from .figures import plain_text
from .site.names import suite_display_names, without_local_paths
from .stats import N_BOOT, configuration_stats
from .tables import read_results

CONFIG_LABELS = ["backbone_label", "head_label", "augmenter_label"]
PLOT_CAPTION = ("Mean macro-F1 over seeds per task of the best configurations; error bars: 95% patient-bootstrap "
                "interval (none where predictions are not stored); dashed black line: stratified chance baseline.")


def write_plot(run_dir: str | Path, out_png: str | Path, top: int = 4) -> Path:
    """Draw the chart for one run directory's stored results into ``out_png``."""
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    plot_results(read_results(run_dir), out_png, top=top, dataset_names=run_display_names(run_dir))
    return out_png


def run_display_names(run_dir: str | Path) -> dict[str, str]:
    """Dataset label -> the name its suite gave it (``label:``), from a run directory's ``suite.yaml``."""
    suite = Path(run_dir) / "suite.yaml"
    return suite_display_names(yaml.safe_load(suite.read_text(encoding="utf-8")) or {}) if suite.exists() else {}


def has_model_cells(results: pd.DataFrame) -> bool:
    return bool(((results["status"] == "ok") & ~results["head"].isin(DUMMY_HEADS)).any())


def plot_results(results: pd.DataFrame, out: str | Path | BinaryIO, top: int = 4,
                 dataset_names: dict[str, str] | None = None, n_boot: int = N_BOOT) -> None:
    """Draw :func:`macro_f1_figure` of raw results rows into a PNG path or binary file object."""
    figure = macro_f1_figure(results, top, dataset_names, n_boot)
    figure.savefig(out, format="png", dpi=120, bbox_inches="tight")


@plain_text
def macro_f1_figure(results: pd.DataFrame, top: int = 4, dataset_names: dict[str, str] | None = None,
                    n_boot: int = N_BOOT) -> Figure:
    """The chart of raw results rows, titled with the datasets' names and captioned.

    ``dataset_names`` maps dataset labels to the names shown (the suite's ``label:``); other
    labels are shown without local paths.

    The ``top`` configurations (backbone + head + augmenter) are those with the
    highest mean Δ macro-F1 over the stratified dummy across tasks, so tasks with
    different chance levels weigh alike.
    """
    if not has_model_cells(results):
        raise SkinbenchError("nothing to plot: no successful non-dummy run in the results")
    cells = configuration_stats(results, n_boot=n_boot)
    names = {label: (dataset_names or {}).get(label) or without_local_paths(label) for label in cells["dataset"].unique()}
    cells["x_label"] = _task_labels(cells, names)
    models = cells[~cells["head"].isin(DUMMY_HEADS)].dropna(subset=["macro_f1_mean"])
    configs = _best_configs(models, top)
    tasks = list(pd.unique(cells["x_label"]))
    figure = _bar_chart(models, configs, tasks, _stratified_by_task(cells))
    figure.axes[0].set_title(f"Macro-F1 per task: {', '.join(dict.fromkeys(names.values()))}", loc="left", fontsize=11)
    figure.supxlabel(textwrap.fill(PLOT_CAPTION, 150), fontsize=7, color="#57606a", x=0.01, ha="left")
    return figure


def _task_labels(cells: pd.DataFrame, names: dict[str, str]) -> pd.Series:
    """Task names, prefixed by the dataset's display name when several datasets are plotted together."""
    if cells["dataset"].nunique() > 1:
        return cells["dataset"].map(names) + "/" + cells["task"].astype(str)
    return cells["task"].astype(str)


def _best_configs(models: pd.DataFrame, top: int) -> list[tuple]:
    score = "delta_vs_stratified" if models["delta_vs_stratified"].notna().any() else "macro_f1_mean"
    ranking = models.groupby(CONFIG_LABELS, sort=False)[score].mean().sort_values(ascending=False, kind="stable")
    return list(ranking.index[:top])


def _stratified_by_task(cells: pd.DataFrame) -> dict:
    return cells.dropna(subset=["stratified_macro_f1"]).groupby("x_label")["stratified_macro_f1"].first().to_dict()


def _bar_chart(models: pd.DataFrame, configs: list[tuple], tasks: list[str], chance: dict) -> Figure:
    figure = Figure(figsize=(max(6.0, 1.4 * len(tasks) * max(1, len(configs)) ** 0.5), 4.8), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(tasks))
    width = 0.8 / len(configs)
    cells_by_config = dict(list(models.groupby(CONFIG_LABELS, sort=False)))
    for index, config in enumerate(configs):
        # two cells under the same labels (e.g. plugin code edited between runs): the later one
        by_task = cells_by_config[config].drop_duplicates("x_label", keep="last").set_index("x_label").reindex(tasks)
        mean = by_task["macro_f1_mean"]
        error = np.vstack([mean - by_task["macro_f1_ci_low"], by_task["macro_f1_ci_high"] - mean]).clip(min=0)
        error = np.nan_to_num(error)  # no interval (no stored predictions): no bar
        axes.bar(positions - 0.4 + width * (index + 0.5), mean, width, yerr=error, capsize=3,
                 label=" + ".join(without_local_paths(str(c)) for c in config))
    chance_label = "stratified chance"
    for position, task in enumerate(tasks):
        if task in chance:
            axes.hlines(chance[task], position - 0.45, position + 0.45, colors="black", linestyles="--",
                        label=chance_label)
            chance_label = None  # a single legend entry
    axes.set_xticks(positions, tasks, rotation=20 if len(tasks) > 4 else 0)
    axes.set_ylabel("macro-F1 (mean over seeds)")
    axes.set_ylim(0, 1.08)  # room above 1.0 so a bar or error bar reaching the maximum is not cut
    figure.legend(loc="outside right upper", fontsize="small", frameon=False)
    return figure
