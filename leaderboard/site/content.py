"""What each page of the site shows, from the stored rows and predictions only.

Every number comes from :mod:`skinbench.leaderboard.stats` (patient-bootstrap intervals,
Holm-corrected verdicts, ties, minimum detectable Δ, class counts, subgroups, paired
augmentation effects) or is a stored metric; this module only picks and formats. Every value
a reader sees is a :class:`Value`: its text and the key the browser sorts by.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from skinbench.api import SUBGROUP_COLUMNS
from skinbench.metrics import reliability_bins
from skinbench.vocabulary import (
    DUMMY_HEADS,
    LOWER_IS_BETTER,
    MISSING,
    VERDICT_TEXT,
    format_interval,
    format_number,
    format_p,
)

from ..stats import (
    N_BOOT,
    LeaderboardStats,
    leaderboard_stats,
    predictions_file,
    subgroup_stats,
)
from ..rank_tables import rank_text
from ..stats.curves import CurveStats, learning_curves
from ..stats.predictions import full_data
from ..audit import CONTAMINATION_CAPTION, AuditFindings, audit_findings, contamination_column
from ..tables import MOST_FREQUENT, merge_results
from .names import class_names, prompt_files, slug, without_local_paths
from .runs import Run, dataset_display_names

INTERVAL_METRICS = (("balanced_accuracy", "bal. acc."),)
NO_TRAINING_LABELS = {
    "none": ("no labelled training images", "this head read no label at all: zero-shot from class prompts"),
    "validation": ("no labelled training images", "only the validation fold's labels were read, to calibrate"),
}
"""How a head that saw no labelled training image is marked (``labelled_images`` in the resolved suite)."""
MEAN_METRICS = (("auroc", "AUROC"), ("ece", "ECE"), ("brier", "Brier"), ("nll", "NLL"))
RELIABILITY_PANELS = 6


@dataclass(frozen=True)
class Value:
    text: str
    sort: Any = None
    title: str = ""


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    title: str = ""
    numeric: bool = False


@dataclass
class Configuration:
    """One configuration (a model, or a chance dummy) of a task: its numbers and its stored rows."""

    cell_id: str
    run_dir: str
    backbone: str
    augmenter: str
    head: str
    stats: pd.Series
    """Its row of :attr:`LeaderboardStats.configurations`."""
    values: dict[str, Value]

    @property
    def label(self) -> str:
        return f"{self.backbone} · {self.augmenter} · {self.head}"

    @property
    def verdict(self) -> str | None:
        verdict = self.stats.get("verdict")
        return verdict if isinstance(verdict, str) else None


@dataclass
class TaskPage:
    dataset: str
    dataset_name: str
    task: str
    slug: str
    ordinal: bool
    classes: list[str]
    class_names: dict[str, str]
    summary: pd.Series
    """Its row of :attr:`LeaderboardStats.tasks` (sizes, minimum detectable Δ)."""
    columns: list[Column]
    configurations: list[Configuration]
    dummies: list[Configuration]
    class_counts: pd.DataFrame
    effects: pd.DataFrame
    warnings: list[str]
    predictions: dict[tuple[str, int, int, int], pd.DataFrame]
    """Stored test predictions by (cell_id, seed, split, fold)."""
    subgroups: dict[str, pd.DataFrame] = field(default_factory=dict)
    rank_frequencies: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per configuration and rank: the share of resamples (the blob plot)."""
    curves: CurveStats | None = None
    """The task's learning curves (None: the runs trained on all patients only)."""
    audit: AuditFindings | None = None
    """The run directories' audit (near-duplicates, contamination, likely label errors)."""

    @property
    def title(self) -> str:
        return f"{self.dataset_name} / {self.task}"

    @property
    def best(self) -> Configuration | None:
        return self.configurations[0] if self.configurations else None

    @property
    def verdicts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for configuration in self.configurations:
            verdict = configuration.verdict or "not judged"
            counts[verdict] = counts.get(verdict, 0) + 1
        return counts

    def test_images(self) -> str:
        return _range_text(self.summary.get("test_images_min"), self.summary.get("test_images_max"))

    def test_patients(self) -> str:
        return _range_text(self.summary.get("test_patients_min"), self.summary.get("test_patients_max"))


def task_pages(runs: list[Run], n_boot: int = N_BOOT, seed: int = 0,
               allow_different_data: bool = False) -> list[TaskPage]:
    """One page per (dataset, task), in the order the runs computed them."""
    every_point = merge_results([run.results for run in runs], allow_different_data)
    results = full_data(every_point)
    stats = leaderboard_stats(results, n_boot=n_boot, seed=seed)
    curves = learning_curves(every_point, n_boot=n_boot, seed=seed)
    predictions = stored_predictions(results)
    subgroups = _subgroups(results, predictions, n_boot, seed)
    names = dataset_display_names(runs)
    suites = {str(run.dir): run.suite for run in runs}
    run_of = results.drop_duplicates("cell_id", keep="last").set_index("cell_id")["run_dir"].to_dict()
    findings = audit_findings(results)
    configurations = stats.configurations.assign(contamination=lambda c: contamination_column(c, findings))
    label_use = {str(e.get("label")): str(e.get("labelled_images", "training"))
                 for suite in suites.values() for e in suite.get("heads") or []}
    pages = []
    for (dataset, task), configs in configurations.groupby(["dataset", "task"], sort=False):
        dataset, task = str(dataset), str(task)
        rows = results[(results["dataset"] == dataset) & (results["task"] == task)]
        cells = set(rows["cell_id"])
        stored = {key: frame for key, frame in predictions.items() if key[0] in cells}
        suite = suites.get(run_of.get(configs["cell_id"].iloc[0], ""), {})
        page = _task_page(stats, dataset, names.get(dataset, without_local_paths(dataset)), task, configs, run_of,
                          bool(rows["ordinal"].any()), stored, suite, label_use)
        same_task = {"dataset": dataset, "task": task}
        page.subgroups = {c: part for c, frame in subgroups.items() if len(part := _select(frame, same_task))}
        if stats.ranks is not None:
            page.rank_frequencies = _select(stats.ranks.frequencies, same_task)
        page.curves = curves.of_task(dataset, task)
        page.audit = findings
        pages.append(page)
    return pages


def _task_page(stats: LeaderboardStats, dataset: str, dataset_name: str, task: str, configs: pd.DataFrame,
               run_of: dict, ordinal: bool, stored: dict, suite: dict, label_use: dict[str, str]) -> TaskPage:
    same_task = {"dataset": dataset, "task": task}
    summary = _select(stats.tasks, same_task)
    configurations = [_configuration(row, run_of, ordinal, label_use) for _, row in configs.iterrows()]
    models = sorted((c for c in configurations if c.head not in DUMMY_HEADS),
                    key=lambda c: -_finite(c.stats.get("macro_f1_mean")))
    _mark_ties(models)
    first = next(iter(stored.values()), pd.DataFrame())
    classes = [c[len("proba_"):] for c in first.columns if c.startswith("proba_")]
    prefix = f"{dataset}/{task}:"
    return TaskPage(
        dataset=dataset, dataset_name=dataset_name, task=task, slug=slug(dataset, task), ordinal=ordinal,
        classes=classes, class_names=class_names(task, classes, prompt_files(suite)),
        summary=summary.iloc[0] if len(summary) else pd.Series(dtype=object), columns=_columns(ordinal),
        configurations=models, dummies=[c for c in configurations if c.head in DUMMY_HEADS],
        class_counts=_select(stats.class_counts, same_task), effects=_select(stats.augmentation, same_task),
        warnings=[without_local_paths(w[len(prefix):].strip()) for w in stats.warnings if w.startswith(prefix)],
        predictions=stored,
    )


def _select(frame: pd.DataFrame, where: dict[str, str]) -> pd.DataFrame:
    mask = np.ones(len(frame), bool)
    for column, value in where.items():
        mask &= (frame[column].astype(str) == value).to_numpy()
    return frame[mask].reset_index(drop=True)


def stored_predictions(results: pd.DataFrame) -> dict[tuple[str, int, int, int], pd.DataFrame]:
    """The stored test predictions of every successful row that has them, by (cell_id, seed, split, fold)."""
    out = {}
    for row in results[results["status"] == "ok"].itertuples(index=False):
        path = predictions_file(row.run_dir, row.cell_id, row.seed, row.split, row.fold)
        if path.exists():
            out[(str(row.cell_id), int(row.seed), int(row.split), int(row.fold))] = pd.read_parquet(path)
    return out


def _subgroups(results: pd.DataFrame, predictions: dict, n_boot: int, seed: int) -> dict[str, pd.DataFrame]:
    """Subgroup statistics for every subgroup column some stored prediction has."""
    present = {c for frame in predictions.values() for c in SUBGROUP_COLUMNS if c in frame}
    return {column: subgroup_stats(results, column, n_boot=n_boot, seed=seed)
            for column in SUBGROUP_COLUMNS if column in present}


def _configuration(row: pd.Series, run_of: dict, ordinal: bool, label_use: dict[str, str]) -> Configuration:
    head = without_local_paths(str(row["head_label"]))
    mark = NO_TRAINING_LABELS.get(label_use.get(str(row["head_label"]), "training"))
    values = {
        "backbone": Value(without_local_paths(str(row["backbone_label"]))),
        "augmenter": Value(without_local_paths(str(row["augmenter_label"]))),
        "head": Value(f"{head} · {mark[0]}", head, mark[1]) if mark else Value(head),
        "macro_f1": _interval(row, "macro_f1"),
        "delta": _interval(row, "delta_vs_best_dummy", mean_column="delta_vs_best_dummy", signed=True),
        "p_holm": _p_value(row.get("p_vs_best_dummy_holm")),
        "verdict": _verdict(row.get("verdict")),
        "tie": Value(MISSING),
        "rank": Value(rank_text(row), _number(row.get("rank")).sort, "rank 1 = best; 95% interval of the rank over the "
                      "patient resamples"),
        "contamination": Value(str(row.get("contamination", MISSING))),
        "seeds": Value(str(int(row["n_ok"])), int(row["n_ok"]), f"{int(row['n_failed'])} failed" if row["n_failed"] else ""),
    }
    if ordinal:
        values["qwk"] = _interval(row, "qwk")
    for metric, _ in INTERVAL_METRICS:
        values[metric] = _interval(row, metric)
    for metric, _ in MEAN_METRICS:
        values[metric] = _number(row.get(f"{metric}_mean"))
    return Configuration(cell_id=str(row["cell_id"]), run_dir=str(run_of.get(row["cell_id"], "")),
                         backbone=values["backbone"].text, augmenter=values["augmenter"].text,
                         head=str(row["head_label"]), stats=row, values=values)


def _mark_ties(models: list[Configuration]) -> None:
    """The tie column: the best configuration, those not distinguishable from it, and the rest."""
    for index, configuration in enumerate(models):
        tied = configuration.stats.get("tied_with_best")
        tied = bool(tied) if isinstance(tied, (bool, np.bool_)) else None
        if index == 0 and tied is True:
            configuration.values["tie"] = Value("best", 0, "the highest mean macro-F1 of this task")
        elif tied is True:
            configuration.values["tie"] = Value("tied with best", 1, "not distinguishable from the best (paired "
                                                "bootstrap, Holm-corrected within the task)")
        elif tied is False:
            configuration.values["tie"] = Value("below best", 2, "worse than the best (paired bootstrap, Holm)")


def _columns(ordinal: bool) -> list[Column]:
    columns = [
        Column("backbone", "backbone"), Column("augmenter", "augmenter"), Column("head", "head"),
        Column("macro_f1", "macro-F1 [95% CI]", "mean over seeds; 95% patient-bootstrap interval", numeric=True),
        Column("delta", "Δ vs best dummy [95% CI]", "macro-F1 minus the best dummy's (most-frequent, uniform or "
               "stratified), paired on the same resampled test patients", numeric=True),
        Column("p_holm", "p (Holm)", "one-sided bootstrap p of Δ ≤ 0, Holm-corrected over this leaderboard",
               numeric=True),
        Column("verdict", "verdict", "above chance, chance or below chance at Holm-corrected level 0.05"),
        Column("tie", "tie group", "configurations not distinguishable from the best", numeric=True),
        Column("rank", "rank [95%]", "rank by macro-F1 (1 = best) with the 2.5–97.5% percentiles of the rank over "
               "the patient resamples", numeric=True),
        Column("contamination", "contamination", CONTAMINATION_CAPTION),
    ]
    if ordinal:
        columns.append(Column("qwk", "QWK [95% CI]", "quadratic-weighted kappa (ordinal task)", numeric=True))
    for metric, header in INTERVAL_METRICS:
        columns.append(Column(metric, f"{header} [95% CI]", "higher is better", numeric=True))
    for metric, header in MEAN_METRICS:
        hint = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
        columns.append(Column(metric, header, f"mean over seeds of the stored metric; {hint}", numeric=True))
    columns.append(Column("seeds", "runs", "successful (seed, split) runs of this configuration", numeric=True))
    return columns


# ---------------------------------------------------------------- formatting


DIGITS = 2
"""As the terminal and the leaderboard files: one spelling of every number (skinbench.vocabulary)."""


def _interval(row: pd.Series, metric: str, mean_column: str | None = None, signed: bool = False) -> Value:
    mean = row.get(mean_column or f"{metric}_mean")
    if mean is None or pd.isna(mean):
        return Value(MISSING)
    text = format_interval(mean, row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high"), DIGITS, signed)
    return Value(text, float(mean))


def _number(value: Any) -> Value:
    if value is None or pd.isna(value):
        return Value(MISSING)
    return Value(format_number(value, DIGITS), float(value))


def _p_value(p: Any) -> Value:
    if p is None or pd.isna(p):
        return Value(MISSING)
    return Value(format_p(p), float(p))


def _verdict(verdict: Any) -> Value:
    if not isinstance(verdict, str):
        return Value(MISSING, "", "no verdict: chance baseline, or no stored predictions")
    return Value(VERDICT_TEXT.get(verdict, verdict), verdict)


def _finite(value: Any) -> float:
    return float(value) if value is not None and not pd.isna(value) else -np.inf


def _range_text(low: Any, high: Any) -> str:
    if low is None or pd.isna(low):
        return MISSING
    return str(int(low)) if pd.isna(high) or int(low) == int(high) else f"{int(low)}–{int(high)}"


# ---------------------------------------------------------------- predictions


def predictions(page: TaskPage, configuration: Configuration) -> pd.DataFrame:
    """Every stored test prediction of one configuration, with its seed, split and outer fold."""
    frames = [frame.assign(seed=seed, split=split, fold=fold) for (cell_id, seed, split, fold), frame
              in page.predictions.items()
              if cell_id == configuration.cell_id]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def reliability_curves(page: TaskPage) -> list[dict]:
    """Reliability of the best configurations, test predictions pooled over seeds and splits."""
    chance = _majority_accuracy(page)
    curves = []
    for configuration in page.configurations[:RELIABILITY_PANELS]:
        frame = predictions(page, configuration)
        if frame.empty:
            continue
        proba = frame[[f"proba_{c}" for c in page.classes]].to_numpy(float)
        y = pd.Index(page.classes).get_indexer(frame["y_true"].astype(str))
        confidence, accuracy, size = reliability_bins(y, proba)
        curves.append({"label": configuration.label, "confidence": confidence, "accuracy": accuracy, "size": size,
                       "ece": float(configuration.stats.get("ece_mean", np.nan)), "chance": chance})
    return curves


def _majority_accuracy(page: TaskPage) -> float:
    """Accuracy of always predicting the training majority class (the most-frequent dummy)."""
    majority = [c for c in page.dummies if c.head == MOST_FREQUENT]
    return float(majority[0].stats.get("accuracy_mean", np.nan)) if majority else np.nan
