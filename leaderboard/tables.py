"""Aggregate raw ``results.csv`` rows and lay them out as the thesis's result tables.

Everything here is aggregation of stored numbers: no model is run and no metric
is recomputed. Functions take a results DataFrame (not a directory) so that a
caller can concatenate the results of several run directories first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from skinbench.api import SkinbenchError
from skinbench.store import DUMMY_HEADS, METRICS, RESULT_COLUMNS, ResultsStore

CELL_KEYS = (
    "dataset", "task", "backbone", "augmenter", "head",
    "backbone_label", "augmenter_label", "head_label", "cell_id",
)
"""A cell's identity; seeds are aggregated away. Labels tell configurations apart for display."""

REAL_ONLY = "none"
STRATIFIED, MOST_FREQUENT, UNIFORM = "dummy:stratified", "dummy:most_frequent", "dummy:uniform"
DUMMY_NAMES = {MOST_FREQUENT: "most-frequent", UNIFORM: "uniform", STRATIFIED: "stratified"}
NOISE_FACTOR = 2.0
MISSING = "–"

STD_NOTE = (
    "Mean ± sample standard deviation (ddof=1) over seeds; a cell with a single "
    "successful seed shows the mean alone, and '(n=k)' marks a cell with fewer "
    f"successful seeds than the task's others. '{MISSING}' = no successful run."
)
NOISE_NOTE = (
    f"Δ = model macro-F1 − baseline macro-F1 (means over seeds). '*' marks Δ > "
    f"{NOISE_FACTOR:g} × std/√n of the model's macro-F1 over its n seeds, i.e. a gain "
    "clearly above seed-to-seed noise; never shown for n = 1."
)


@dataclass
class Table:
    """One displayable table: every cell is already a formatted string."""

    title: str
    caption: str
    frame: pd.DataFrame


@dataclass
class Section:
    title: str
    tables: list[Table] = field(default_factory=list)


def read_results(run_dir: str | Path) -> pd.DataFrame:
    """The stored raw rows of a run directory, checked for the columns the leaderboard needs."""
    store = ResultsStore(run_dir)
    if not store.results_csv.exists():
        raise SkinbenchError(
            f"{store.results_csv} does not exist: is {run_dir} a run directory written by `skinbench run`?"
        )
    results = store.read()
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise SkinbenchError(f"{store.results_csv} lacks column(s) {', '.join(missing)}; expected {', '.join(RESULT_COLUMNS)}")
    return current_data_rows(results)


def current_data_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, only rows computed on its latest data (the fingerprint of its last appended row).

    A dataset corrected in place gets new cells under the same labels; the older rows stay in
    results.csv for the record but must not be mixed into the tables.
    """
    latest = results.groupby("dataset", sort=False)["data_fingerprint"].last()
    return results[results["data_fingerprint"] == results["dataset"].map(latest)]


def ok_rows(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["status"] == "ok"]


def failed_rows(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["status"] != "ok"]


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """One tidy row per cell: mean/std/n of every metric over successful seeds, plus Δ columns.

    std is the sample standard deviation (ddof=1), NaN for a single seed. Failed
    rows are excluded from the statistics and counted in ``n_failed``. The Δ
    columns compare the cell's mean macro-F1 with its task's stratified dummy
    and with the best of the three dummies; ``above_noise_vs_*`` apply the rule in
    :data:`NOISE_NOTE` to each Δ.
    """
    keys = list(CELL_KEYS)
    counts = results.groupby(keys, dropna=False, sort=False)["status"].agg(
        n_ok=lambda s: int((s == "ok").sum()), n_failed=lambda s: int((s != "ok").sum())
    )
    ok = ok_rows(results).astype({m: float for m in METRICS})
    stats = ok.groupby(keys, dropna=False, sort=False)[list(METRICS)].agg(["mean", "std", "count"])
    stats.columns = [f"{metric}_{stat if stat != 'count' else 'n'}" for metric, stat in stats.columns]
    cells = counts.join(stats, how="left").reset_index()
    return _with_deltas(cells)


def _with_deltas(cells: pd.DataFrame) -> pd.DataFrame:
    dummies = cells[cells["head"].isin(DUMMY_HEADS)]
    per_task = dummies.pivot_table(index=["dataset", "task"], columns="head", values="macro_f1_mean", aggfunc="max")
    baselines = pd.DataFrame({
        "stratified_macro_f1": per_task.get(STRATIFIED, pd.Series(np.nan, index=per_task.index)),
        "best_dummy_macro_f1": per_task.max(axis=1),
    }, index=per_task.index).reset_index()
    cells = cells.merge(baselines, on=["dataset", "task"], how="left")
    cells["delta_vs_stratified"] = cells["macro_f1_mean"] - cells["stratified_macro_f1"]
    cells["delta_vs_best_dummy"] = cells["macro_f1_mean"] - cells["best_dummy_macro_f1"]
    standard_error = cells["macro_f1_std"] / np.sqrt(cells["macro_f1_n"])
    for baseline in ("stratified", "best_dummy"):
        above = cells[f"delta_vs_{baseline}"] > NOISE_FACTOR * standard_error
        cells[f"above_noise_vs_{baseline}"] = above & (cells["macro_f1_n"] >= 2)
    return cells


# ---------------------------------------------------------------- formatting


def format_mean_std(mean: float, std: float, n: float, digits: int, full_n: int) -> str:
    if pd.isna(mean):
        return MISSING
    text = f"{mean:.{digits}f}" if n < 2 or pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"
    return text if n >= full_n else f"{text} (n={int(n)})"


def format_delta(delta: float, digits: int, above_noise: bool = False) -> str:
    if pd.isna(delta):
        return MISSING
    text = f"{delta:+.{digits}f}"
    if float(text) == 0:
        text = text[1:]  # neither "+0.00" nor "-0.00": the sign is below the shown precision
    return text + ("*" if above_noise else "")


def _metric_text(match: pd.DataFrame, metric: str, digits: int, full_n: int) -> str:
    """``metric`` of the one cell in ``match`` as mean ± std, or a dash when the cell never ran."""
    if match.empty:
        return MISSING
    cell = match.iloc[0]
    return format_mean_std(cell[f"{metric}_mean"], cell[f"{metric}_std"], cell[f"{metric}_n"], digits, full_n)


def _ordered(values: pd.Series, first: str | None = None) -> list:
    """Distinct values in order of appearance (the runner's order), ``first`` moved to the front."""
    order = list(pd.unique(values))
    return sorted(order, key=lambda v: v != first) if first is not None else order


# ---------------------------------------------------------------- tables


def performance_tables(cells: pd.DataFrame, digits: int) -> list[Table]:
    """Thesis Tables 5.1-5.5: one table per backbone × head; rows tasks, columns augmenters."""
    models = cells[~cells["head"].isin(DUMMY_HEADS)]
    full_n = _full_n(cells)
    tables = []
    for (backbone, head), group in models.groupby(["backbone_label", "head_label"], sort=False):
        augmenters = _augmenter_order(group)
        rows = []
        for task in _ordered(cells["task"]):
            row = {"task": task}
            for augmenter in augmenters:
                match = group[(group["task"] == task) & (group["augmenter_label"] == augmenter)]
                for metric, name in (("macro_f1", "macro-F1"), ("weighted_f1", "weighted-F1")):
                    row[f"{augmenter} {name}"] = _metric_text(match, metric, digits, full_n[task])
            rows.append(row)
        tables.append(Table(
            title=f"{backbone} + {head}",
            caption=f"Test macro-F1 and weighted-F1 of backbone {backbone} with head {head}, per augmenter "
                    f"('{REAL_ONLY}' = real images only). {STD_NOTE}",
            frame=pd.DataFrame(rows),
        ))
    return tables


def dummy_table(cells: pd.DataFrame, digits: int) -> Table:
    """Thesis Table 5.6: the three chance baselines per task."""
    full_n = _full_n(cells)
    rows = []
    for task in _ordered(cells["task"]):
        row = {"task": task}
        for head, name in DUMMY_NAMES.items():
            match = cells[(cells["task"] == task) & (cells["head"] == head)]
            for metric, metric_name in (("macro_f1", "macro-F1"), ("balanced_accuracy", "bal. acc.")):
                row[f"{name} {metric_name}"] = _metric_text(match, metric, digits, full_n[task])
        rows.append(row)
    return Table(
        title="Dummy baselines",
        caption="Non-learning baselines fitted on the training part: most-frequent class, uniform "
                "random class, and random class drawn from the training prior (stratified, the "
                f"primary chance comparator). {STD_NOTE}",
        frame=pd.DataFrame(rows),
    )


def delta_table(cells: pd.DataFrame, digits: int) -> Table:
    """Thesis Tables 5.7-5.8: each backbone × head's best augmenter against chance, and the best overall."""
    models = cells[~cells["head"].isin(DUMMY_HEADS)].dropna(subset=["macro_f1_mean"])
    pairs = list(models.groupby(["backbone_label", "head_label"], sort=False).groups)
    rows = []
    for task in _ordered(cells["task"]):
        task_cells = cells[cells["task"] == task]
        task_models = models[models["task"] == task]
        row = {"task": task, "stratified macro-F1": _first_number(task_cells["stratified_macro_f1"], digits)}
        for backbone, head in pairs:
            winners = _winners(task_models[(task_models["backbone_label"] == backbone)
                                           & (task_models["head_label"] == head)])
            augmenters = "/".join(dict.fromkeys(winners["augmenter_label"]))
            row[f"{backbone} + {head} best"] = _best_text(winners, f" ({augmenters})", digits)
            row[f"{backbone} + {head} Δ"] = _delta_text(winners, "delta_vs_stratified", digits)
        winners = _winners(task_models)
        row["best overall"] = "; ".join(
            f"{b} / {h} / {a}" for b, h, a in zip(winners["backbone_label"], winners["head_label"], winners["augmenter_label"])
        ) or MISSING
        row["best macro-F1"] = _best_text(winners, "", digits)
        row["Δ vs stratified"] = _delta_text(winners, "delta_vs_stratified", digits)
        row["Δ vs best dummy"] = _delta_text(winners, "delta_vs_best_dummy", digits)
        rows.append(row)
    return Table(
        title="Macro-F1 against chance",
        caption="Best mean macro-F1 over augmenters for each backbone × head (augmenter in brackets; "
                "ties joined by '/'), compared with the stratified dummy; 'best overall' is the best "
                "backbone / head / augmenter per task, also compared with the best of the three "
                f"dummies. {NOISE_NOTE}",
        frame=pd.DataFrame(rows),
    )


def _winners(candidates: pd.DataFrame) -> pd.DataFrame:
    """The cells reaching the highest mean macro-F1 (several on an exact tie)."""
    top = candidates["macro_f1_mean"].max()
    return candidates[np.isclose(candidates["macro_f1_mean"], top, rtol=0, atol=1e-12)]


def _best_text(winners: pd.DataFrame, suffix: str, digits: int) -> str:
    return f"{winners['macro_f1_mean'].iloc[0]:.{digits}f}{suffix}" if len(winners) else MISSING


def _delta_text(winners: pd.DataFrame, column: str, digits: int) -> str:
    """``column`` is ``delta_vs_<baseline>``; its noise flag is ``above_noise_vs_<baseline>``.

    Tied winners share the Δ; the star is shown when every one of them clears the noise rule.
    """
    if winners.empty:
        return MISSING
    above_noise = bool(winners[column.replace("delta", "above_noise", 1)].all())
    return format_delta(winners[column].iloc[0], digits, above_noise)


def _first_number(values: pd.Series, digits: int) -> str:
    values = values.dropna()
    return f"{values.iloc[0]:.{digits}f}" if len(values) else MISSING


def augmentation_table(results: pd.DataFrame, digits: int) -> Table | None:
    """Does augmentation help? Macro-F1 of each augmenter minus real-only, paired by seed.

    Seeds share the test split, so the paired difference removes the split's luck that the
    per-augmenter means in the performance tables still carry.
    """
    ok = ok_rows(results)
    models = ok[~ok["head"].isin(DUMMY_HEADS)]
    real = models[models["augmenter"] == REAL_ONLY]
    others = models[models["augmenter"] != REAL_ONLY]
    if real.empty or others.empty:
        return None
    keys = ["task", "backbone_label", "head_label", "seed"]
    paired = others.merge(real[keys + ["macro_f1"]], on=keys, suffixes=("", "_real"))
    paired["gain"] = paired["macro_f1"].astype(float) - paired["macro_f1_real"].astype(float)
    rows = []
    for (backbone, head, augmenter), group in paired.groupby(["backbone_label", "head_label", "augmenter_label"], sort=False):
        row = {"backbone + head": f"{backbone} + {head}", "augmenter": augmenter}
        for task in _ordered(results["task"]):
            gains = group.loc[group["task"] == task, "gain"]
            row[task] = _paired_text(gains, digits)
        rows.append(row)
    return Table(
        title="Augmentation effect (paired by seed)",
        caption=f"Mean over seeds of macro-F1(augmenter) − macro-F1('{REAL_ONLY}') for the same backbone, head, "
                f"task and seed, with the seeds where it helped in brackets. '*' marks |mean| > {NOISE_FACTOR:g} × "
                "std/√n of the paired differences.",
        frame=pd.DataFrame(rows),
    )


def _paired_text(gains: pd.Series, digits: int) -> str:
    if gains.empty:
        return MISSING
    n = len(gains)
    noisy = n < 2 or abs(gains.mean()) <= NOISE_FACTOR * gains.std() / np.sqrt(n)
    return f"{format_delta(gains.mean(), digits, above_noise=not noisy)} ({int((gains > 0).sum())}/{n})"


def info_table(results: pd.DataFrame) -> Table:
    """Seeds, successful and failed runs, and part sizes per task, so readers can judge the noise."""
    rows = []
    for task, group in results.groupby("task", sort=False):
        ok = ok_rows(group)
        rows.append({
            "task": task,
            "classes": _range_text(ok["n_classes"]),
            "seeds": int(group["seed"].nunique()),
            "runs ok": len(ok),
            "runs failed": len(group) - len(ok),
            "n_train": _range_text(ok["n_train"]),
            "n_synthetic": _range_text(ok["n_synthetic"]),
            "n_test": _range_text(ok["n_test"]),
        })
    return Table(
        title="Runs and sample sizes",
        caption="Distinct seeds, successful and failed (cell, seed) runs, and part sizes over successful "
                "runs (min–max where they differ between seeds or cells). Small test parts make every "
                "score above volatile.",
        frame=pd.DataFrame(rows),
    )


def _range_text(values: pd.Series) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return MISSING
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}–{high}"


def failures_table(results: pd.DataFrame, max_chars: int = 300) -> Table:
    """Every failed (cell, seed) with its error, first ``max_chars`` characters (results.csv keeps all)."""
    failed = failed_rows(results)
    frame = pd.DataFrame({
        "dataset": failed["dataset"], "task": failed["task"], "backbone": failed["backbone_label"],
        "augmenter": failed["augmenter_label"], "head": failed["head_label"], "seed": failed["seed"],
        "error": [_shorten(e, max_chars) for e in failed["error"]],
    })
    return Table(
        title=f"Failures ({len(failed)})",
        caption="Failed runs are excluded from every aggregate above; the full error is in results.csv.",
        frame=frame.reset_index(drop=True),
    )


def _shorten(error: object, max_chars: int) -> str:
    text = " ".join(str(error).split()) if not pd.isna(error) else ""
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _full_n(cells: pd.DataFrame) -> dict:
    """Per task, the most successful seeds any cell has: fewer is flagged as '(n=k)'."""
    return cells.groupby("task", sort=False)["n_ok"].max().to_dict()


def _augmenter_order(group: pd.DataFrame) -> list:
    real = group.loc[group["augmenter"] == REAL_ONLY, "augmenter_label"]
    return _ordered(group["augmenter_label"], first=real.iloc[0] if len(real) else None)


def build_report(results: pd.DataFrame, digits: int = 2) -> list[Section]:
    """All tables, one section per dataset, then a failures section when any run failed."""
    cells = aggregate(results)
    sections = []
    for dataset in _ordered(results["dataset"]):
        dataset_cells = cells[cells["dataset"] == dataset]
        tables = [
            *performance_tables(dataset_cells, digits),
            dummy_table(dataset_cells, digits),
            delta_table(dataset_cells, digits),
            augmentation_table(results[results["dataset"] == dataset], digits),
            info_table(results[results["dataset"] == dataset]),
        ]
        tables = [t for t in tables if t is not None]
        sections.append(Section(title=f"Dataset {dataset}", tables=tables))
    if len(failed_rows(results)):
        sections.append(Section(title="Failures", tables=[failures_table(results)]))
    return sections
