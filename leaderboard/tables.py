"""Read stored result rows and lay the leaderboard's statistics out as tables of formatted text.

Layout only: every number comes from :mod:`skinbench.leaderboard.stats` (intervals, verdicts, ties,
effects, sizes). Functions take a results DataFrame (not a directory) so that a caller can merge
the rows of several run directories first (:func:`merge_results`).
"""
from __future__ import annotations

import json

from pathlib import Path

import pandas as pd
from skinbench.api import SkinbenchError
from skinbench.atomic import utf8_problem
from skinbench.record.store import RESULT_COLUMNS, ResultsStore
from skinbench.vocabulary import (
    DUMMY_HEADS,
    MISSING,
    REAL_ONLY,
    STRATIFIED,
    VERDICT_TEXT,
    format_interval,
    format_p,
)

from .curves import label_efficiency_table
from .audit import CONTAMINATION_CAPTION, audit_findings, audit_warnings, contamination_column
from .layout import Report, Section, Table
from .merge import merge_runs
from .rank_tables import consensus_table, rank_stability_table, rank_text
from .sizes import sample_size_table, variance_table
from .stats import ALPHA, N_BOOT, LeaderboardStats, cv_variance_inflation, leaderboard_stats
from .stats.curves import learning_curves

MOST_FREQUENT, UNIFORM = "dummy:most_frequent", "dummy:uniform"
DUMMY_NAMES = {MOST_FREQUENT: "most-frequent", UNIFORM: "uniform", STRATIFIED: "stratified"}


def read_results(run_dir: str | Path) -> pd.DataFrame:
    """The stored rows of a run directory (its datasets' latest data), each with the ``run_dir`` it came from."""
    odd = utf8_problem(run_dir, "the run directory")
    if odd:
        raise SkinbenchError(odd)
    store = ResultsStore(run_dir)
    if not store.exists():
        raise SkinbenchError(f"{run_dir} holds no results (results.jsonl or results.csv): "
                             "is it a run directory written by `skinbench run`?")
    results = store.read()
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise SkinbenchError(f"{run_dir}: the results lack column(s) {', '.join(missing)}")
    return current_data_rows(results).assign(run_dir=str(run_dir))


def merge_results(frames: list[pd.DataFrame], allow_different_data: bool = False) -> pd.DataFrame:
    """Rows of several run directories, one per (cell_id, seed, split, fold): a shared dummy row counts once.

    Rows of one dataset computed on other data or test patients are refused, or with
    ``allow_different_data`` shown as separate datasets (:mod:`skinbench.leaderboard.merge`)."""
    return merge_runs(frames, allow_different_data)


def current_data_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, only rows computed on its latest data and scheme (those of its last appended row).

    A dataset corrected in place, or a suite switched between holdout and cv in the same run
    directory, gets new cells under the same labels; the older rows stay in the store for the record
    but must not be mixed into the tables.
    """
    latest = results.groupby("dataset", sort=False)[["data_fingerprint", "scheme"]].last()
    current = results["dataset"].map(latest["data_fingerprint"]).eq(results["data_fingerprint"])
    return results[current & results["dataset"].map(latest["scheme"]).eq(results["scheme"])]


# ---------------------------------------------------------------- formatting


def _interval(row: pd.Series, name: str, digits: int, signed: bool = False) -> str:
    return format_interval(row[name if name.startswith("delta") or name == "gain" else f"{name}_mean"],
                           row[f"{name}_ci_low"], row[f"{name}_ci_high"], digits, signed)


def _ordered(values: pd.Series, first: str | None = None) -> list:
    """Distinct values in order of appearance (the runner's order), ``first`` moved to the front."""
    order = list(pd.unique(values))
    return sorted(order, key=lambda v: v != first) if first is not None else order


def interval_note(stats: LeaderboardStats) -> str:
    folds = int(stats.tasks["n_folds"].max()) if len(stats.tasks) else 1
    if folds > 1:
        return cv_interval_text(stats.n_boot, folds, int(stats.tasks["n_splits"].max()))
    return interval_text(stats.n_boot, splits=bool((stats.tasks["n_splits"] > 1).any()))


def interval_text(n_boot: int, splits: bool = False) -> str:
    """What the brackets are, in one sentence fragment (see :func:`skinbench.leaderboard.stats.estimate`)."""
    redrawn = ", test splits redrawn with replacement" if splits else ""
    return (f"Brackets: 95% interval from a bootstrap over test patients ({n_boot} resamples{redrawn}; each scores "
            "every seed and averages them), estimate ± t(n−1) × SE × √(n/(n−1)) for n test patients")


def cv_interval_text(n_boot: int, folds: int, repeats: int) -> str:
    """The brackets under patient-grouped cross-validation (see ``TaskPredictions.variance_inflation``)."""
    again = f" and each of the {repeats} repeats" if repeats > 1 else ""
    c = cv_variance_inflation(folds)
    return (f"Brackets: 95% interval from a bootstrap over all patients' out-of-fold predictions of {folds}-fold "
            f"patient-grouped cross-validation ({n_boot} resamples; each scores every seed{again} and averages "
            f"them), estimate ± t(n−1) × SE × √(n/(n−1) × {c:.2f}) for n patients; {c:.2f} = 1 + K/(K−1) is "
            "Nadeau and Bengio's correction for the folds' shared training patients")


# ---------------------------------------------------------------- tables


def performance_tables(configs: pd.DataFrame, note: str, digits: int) -> list[Table]:
    """Thesis Tables 5.1-5.5: one table per backbone × head; rows tasks, columns augmenters."""
    models = configs[~configs["head"].isin(DUMMY_HEADS)]
    full_n = configs.groupby("task", sort=False)["n_ok"].max().to_dict()
    tables = []
    for (backbone, head), group in models.groupby(["backbone_label", "head_label"], sort=False):
        real = group.loc[group["augmenter"] == REAL_ONLY, "augmenter_label"]
        augmenters = _ordered(group["augmenter_label"], first=real.iloc[0] if len(real) else None)
        rows = []
        for task in _ordered(configs["task"]):
            row = {"task": task}
            for augmenter in augmenters:
                match = group[(group["task"] == task) & (group["augmenter_label"] == augmenter)]
                for metric, name in (("macro_f1", "macro-F1"), ("weighted_f1", "weighted-F1")):
                    row[f"{augmenter} {name}"] = _cell_text(match, metric, digits, full_n[task])
            rows.append(row)
        tables.append(Table(
            title=f"{backbone} + {head}",
            caption=f"Test macro-F1 and weighted-F1 (mean over seeds) of backbone {backbone} with head {head}, "
                    f"per augmenter ('{REAL_ONLY}' = real images only); '(n=k)' marks fewer successful seeds than "
                    f"the task's others, '{MISSING}' no successful run. {note}; descriptive, no test or correction.",
            frame=pd.DataFrame(rows),
        ))
    return tables


def _cell_text(match: pd.DataFrame, metric: str, digits: int, full_n: int) -> str:
    if match.empty:
        return MISSING
    cell = match.iloc[0]
    text = _interval(cell, metric, digits)
    return text if cell["n_ok"] >= full_n or text == MISSING else f"{text} (n={int(cell['n_ok'])})"


def dummy_table(configs: pd.DataFrame, note: str, digits: int) -> Table:
    """Thesis Table 5.6: the three chance baselines per task."""
    full_n = configs.groupby("task", sort=False)["n_ok"].max().to_dict()
    rows = []
    for task in _ordered(configs["task"]):
        row = {"task": task}
        for head, name in DUMMY_NAMES.items():
            match = configs[(configs["task"] == task) & (configs["head"] == head)]
            for metric, metric_name in (("macro_f1", "macro-F1"), ("balanced_accuracy", "bal. acc.")):
                row[f"{name} {metric_name}"] = _cell_text(match, metric, digits, full_n[task])
        rows.append(row)
    return Table(
        title="Dummy baselines",
        caption="Non-learning baselines fitted on the training part: most-frequent class, uniform random class, "
                "and random class drawn from the training prior (stratified, the primary chance comparator); the "
                f"random ones are expected scores on the test labels. {note}; descriptive, no correction.",
        frame=pd.DataFrame(rows),
    )


def verdict_table(configs: pd.DataFrame, stats: LeaderboardStats, note: str, digits: int) -> Table:
    """Every model configuration against chance, best first within each task, with its verdict and tie."""
    models = configs[~configs["head"].isin(DUMMY_HEADS)]
    ordinal = bool(configs["qwk_mean"].notna().any())
    rows = []
    for task in _ordered(configs["task"]):
        ranked = models[models["task"] == task].sort_values("macro_f1_mean", ascending=False, kind="stable")
        for _, cell in ranked.iterrows():
            row = {"task": task, "backbone": cell["backbone_label"], "augmenter": cell["augmenter_label"],
                   "head": cell["head_label"], "macro-F1": _interval(cell, "macro_f1", digits),
                   "Δ vs stratified": _interval(cell, "delta_vs_stratified", digits, signed=True),
                   "Δ vs best dummy": _interval(cell, "delta_vs_best_dummy", digits, signed=True),
                   "p (Holm)": format_p(cell["p_vs_best_dummy_holm"]),
                   "verdict": VERDICT_TEXT.get(cell["verdict"], MISSING),
                   "vs best": _tie_text(cell), "rank [95%]": rank_text(cell)}
            if "contamination" in cell:
                row["contamination"] = cell["contamination"]
            if ordinal:
                row["QWK"] = _interval(cell, "qwk", digits)
            rows.append(row)
    return Table(
        title="Macro-F1 against chance",
        caption="Δ = macro-F1 − a dummy's expected macro-F1 on the same resampled patients (stratified: random from "
                "the training prior; best dummy: the task's highest-scoring dummy); 'vs best': 'tied' when a paired "
                "bootstrap cannot tell the configuration from the task's best (Holm-corrected within the task); rank: "
                "1 = best, with the 2.5–97.5% percentiles of the configuration's rank over the resamples. "
                f"{note}; p is the one-sided bootstrap p-value of Δ vs best dummy > 0 (a constant predictor is never "
                "above chance), Holm-corrected over both "
                f"directions of all {stats.n_models} model configurations, and the verdict is 'above' or 'below "
                f"chance' when that corrected p < {ALPHA:g}"
                + (" (QWK: ordinal tasks only)." if ordinal else ".")
                + (f" {CONTAMINATION_CAPTION}." if "contamination" in models else ""),
        frame=pd.DataFrame(rows),
    )


def _tie_text(cell: pd.Series) -> str:
    if pd.isna(cell["tied_with_best"]):
        return MISSING
    if pd.isna(cell["p_vs_best_holm"]):
        return "best"
    return "tied" if cell["tied_with_best"] else "worse"


def augmentation_table(effects: pd.DataFrame, note: str, digits: int, tasks: list[str]) -> Table | None:
    """Does augmentation help? Paired macro-F1 gain of each augmenter over real-only, per task."""
    if effects.empty:
        return None
    rows = []
    for (backbone, head, augmenter), group in effects.groupby(["backbone_label", "head_label", "augmenter_label"],
                                                              sort=False):
        row = {"backbone + head": f"{backbone} + {head}", "augmenter": augmenter}
        for task in tasks:
            match = group[group["task"] == task]
            row[task] = MISSING if match.empty else _effect_text(match.iloc[0], digits)
        rows.append(row)
    return Table(
        title="Augmentation effect",
        caption=f"macro-F1(augmenter) − macro-F1('{REAL_ONLY}') for the same backbone, head and task, paired on the "
                f"same resampled patients and seeds. {note}; 'helps' or 'hurts' when the one-sided bootstrap p-value, "
                f"Holm-corrected over both directions of all {len(effects)} comparisons, is below {ALPHA:g}.",
        frame=pd.DataFrame(rows),
    )


def _effect_text(effect: pd.Series, digits: int) -> str:
    text = _interval(effect, "gain", digits, signed=True)
    return f"{text} {effect['effect']}" if effect["effect"] in ("helps", "hurts") else text


def warnings_table(messages: list[str]) -> Table:
    return Table(title=f"Warnings ({len(messages)})",
                 caption="Problems with the data that limit what the tables above can show; no statistics.",
                 frame=pd.DataFrame({"warning": messages}))


def failures_table(results: pd.DataFrame, max_chars: int = 300) -> Table:
    """Every failed (cell, seed, split, fold) with its error, first ``max_chars`` characters (the store keeps all)."""
    failed = results[results["status"] != "ok"]
    frame = pd.DataFrame({
        "dataset": failed["dataset"], "task": failed["task"], "backbone": failed["backbone_label"],
        "augmenter": failed["augmenter_label"], "head": failed["head_label"], "seed": failed["seed"],
        "split": failed["split"], "fold": failed["fold"], "error": [_shorten(e, max_chars) for e in failed["error"]],
    })
    return Table(
        title=f"Failures ({len(failed)})",
        caption="Failed runs are excluded from every statistic above; the full error is in the results store.",
        frame=frame.reset_index(drop=True),
    )


def _scheme_text(results: pd.DataFrame, dataset: str) -> str:
    """How the dataset was evaluated, when it was cross-validated (holdout is the documented default)."""
    rows = results[results["dataset"] == dataset]
    if "scheme" not in rows or not rows["scheme"].eq("cv").any():
        return ""
    folds, repeats = rows["fold"].nunique(), rows["split"].nunique()
    return (f" (patient-grouped {folds}-fold cross-validation{f' × {repeats} repeats' if repeats > 1 else ''}: "
            "every patient tested once per repeat)")


def _shorten(error: object, max_chars: int) -> str:
    text = " ".join(str(error).split()) if not pd.isna(error) else ""
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def build_report(results: pd.DataFrame, digits: int = 2, n_boot: int = N_BOOT, seed: int = 0) -> Report:
    """All tables, one section per dataset, then warnings and failures when there are any."""
    stats = leaderboard_stats(results, n_boot=n_boot, seed=seed)
    curves = learning_curves(results, n_boot=n_boot, seed=seed)
    note = interval_note(stats)
    findings = audit_findings(results)
    configs = stats.configurations.assign(contamination=lambda c: contamination_column(c, findings))
    sections = []
    for dataset in _ordered(results["dataset"]):
        dataset_configs = configs[configs["dataset"] == dataset]
        effects = stats.augmentation[stats.augmentation["dataset"] == dataset]
        tables = [
            *performance_tables(dataset_configs, note, digits),
            dummy_table(dataset_configs, note, digits),
            verdict_table(dataset_configs, stats, note, digits),
            augmentation_table(effects, note, digits, _ordered(dataset_configs["task"])),
            sample_size_table(stats, dataset, digits),
            variance_table(stats, dataset, digits),
            rank_stability_table(stats, dataset, digits),
            consensus_table(stats, dataset, digits),
            label_efficiency_table(curves, dataset, digits, n_boot),
        ]
        sections.append(Section(title=f"Dataset {dataset}{_scheme_text(results, dataset)}",
                                tables=[t for t in tables if t is not None]))
    warned = left_out_rows(results) + audit_warnings(results, findings) + stats.warnings
    if warned:
        sections.append(Section(title="Warnings", tables=[warnings_table(warned)]))
    if (results["status"] != "ok").any():
        sections.append(Section(title="Failures", tables=[failures_table(results)]))
    return Report(sections=sections, warnings=warned, frame=configs)


def left_out_rows(results: pd.DataFrame) -> list[str]:
    """The rows each task's dataset left out (an empty label...), as the run's split files recorded them."""
    tasks = set(zip(results["dataset"], results["task"]))
    lines: dict[str, None] = {}
    for run_dir in pd.unique(results.get("run_dir", pd.Series(dtype=str))):
        for path in sorted((Path(run_dir) / "split").glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a damaged split file costs this note, not the leaderboard
            for task, messages in (record.get("left_out") or {}).items():
                if (record.get("dataset"), task) in tasks:
                    lines.update(dict.fromkeys(messages))
    return list(lines)
