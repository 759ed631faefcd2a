"""The site's figures per task: Δ against chance, reliability, augmentation effects, subgroups, image strips."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from skinbench.api import SkinbenchError

from .. import figures
from ..stats import MIN_SUBGROUP_N
from ..strip import synthetic_strip
from .content import TaskPage, reliability_curves
from .names import slug, without_local_paths
from .runs import Run

TONES = {"above_chance": "good", "chance": "neutral", "below_chance": "bad",
         "helps": "good", "no_difference": "neutral", "hurts": "bad"}



def task_figures(root: Path, runs: list[Run], page: TaskPage) -> list[dict]:
    """The task's figures, the forest plot first (what a reader looks at first)."""
    folder = root / "figures" / page.slug
    items = [_forest(root, folder, page)]
    if len(page.rank_frequencies):
        items.append(_blobs(root, folder, page))
    curves = reliability_curves(page)
    if curves:
        path = figures.save(figures.reliability_diagrams(curves, f"Reliability: {page.title}"),
                            folder / "reliability.svg")
        items.append(_item(root, path, "Reliability diagrams",
                           f"Top-label accuracy against confidence in equal-mass bins (point size: images per bin), test "
                           f"predictions pooled over seeds, for the {len(curves)} best configurations. The grey diagonal "
                           "is perfect calibration; the dashed line is chance: the accuracy of always predicting the "
                           "training set's majority class. ECE is the mean over seeds of the stored metric."))
    if len(page.effects):
        items.append(_effects(root, folder, page))
    for column, frame in page.subgroups.items():
        items.append(_subgroup(root, folder, page, column, frame))
    if page.curves is not None:
        items.append(_learning_curve(root, folder, page))
    strip = _strip(root, folder, runs, page)
    if strip:
        items.append(strip)
    return items


def _forest(root: Path, folder: Path, page: TaskPage) -> dict:
    rows = pd.DataFrame([{"label": c.label, "estimate": c.stats.get("delta_vs_best_dummy"),
                          "ci_low": c.stats.get("delta_vs_best_dummy_ci_low"),
                          "ci_high": c.stats.get("delta_vs_best_dummy_ci_high"),
                          "tone": TONES.get(c.verdict)} for c in page.configurations])
    figure = figures.interval_plot(rows, f"Δ macro-F1 against chance: {page.title}",
                                   "Δ macro-F1 (configuration − best dummy)", 0.0, "chance (Δ = 0)", (-1.0, 1.0))
    path = figures.save(figure, folder / "forest.svg")
    return _item(root, path, "Δ against chance",
                 "Mean macro-F1 minus the best dummy's per configuration, best first, with its paired 95% "
                 "patient-bootstrap interval. Green: above chance, grey: not distinguishable from chance, red: below "
                 "chance (Holm-corrected over the leaderboard). The dashed line is chance.")


def _blobs(root: Path, folder: Path, page: TaskPage) -> dict:
    """How often each configuration takes each rank on the patient resamples (challengeR's blob plot)."""
    label = {c.cell_id: c.label for c in page.configurations}
    ranked = pd.DataFrame([{"label": c.label, "rank": c.stats.get("rank"), "rank_median": c.stats.get("rank_median"),
                            "rank_ci_low": c.stats.get("rank_ci_low"), "rank_ci_high": c.stats.get("rank_ci_high")}
                           for c in page.configurations]).dropna(subset=["rank"]).sort_values("rank", kind="stable")
    shares = page.rank_frequencies.assign(label=page.rank_frequencies["cell_id"].map(label))
    path = figures.save(figures.blob_plot(shares, ranked, f"Rank stability: {page.title}"), folder / "ranks.svg")
    return _item(root, path, "Rank stability",
                 "Each column is a configuration in reported order; each disc a rank it takes on the patient "
                 "resamples that give the intervals, its area the share of resamples. The cross is the median rank, "
                 "the line the 95% rank interval. A configuration whose discs spread over several ranks has no "
                 "settled place in the ranking.")


def _effects(root: Path, folder: Path, page: TaskPage) -> dict:
    effects = page.effects
    rows = pd.DataFrame({
        "label": [f"{without_local_paths(f'{b} · {h}')}: {without_local_paths(a)}" for b, h, a in
                  zip(effects["backbone_label"], effects["head_label"], effects["augmenter_label"])],
        "estimate": effects["gain"], "ci_low": effects["gain_ci_low"], "ci_high": effects["gain_ci_high"],
        "tone": effects["effect"].map(TONES),
    }).sort_values("estimate", ascending=False)
    figure = figures.interval_plot(rows, f"Does augmentation help? {page.title}",
                                   "Δ macro-F1 (augmenter − real images only)", 0.0, "no effect", (-1.0, 1.0))
    path = figures.save(figure, folder / "augmentation.svg")
    return _item(root, path, "Paired augmentation effect",
                 "Macro-F1 of each augmenter minus that of the same backbone and head on real images only "
                 "('none'), paired on the same seeds and resampled test patients, with its 95% interval. Green: "
                 "helps, red: hurts, grey: no difference (Holm-corrected). The dashed line is no effect.")


def _subgroup(root: Path, folder: Path, page: TaskPage, column: str, frame: pd.DataFrame) -> dict:
    """Macro-F1 per subgroup of the task's best configuration, each against its own chance level."""
    best = page.best
    rows = frame[frame["cell_id"] == best.cell_id] if best is not None else frame.iloc[0:0]
    if rows.empty:
        return {"anchor": f"subgroup-{column}", "path": None, "title": f"Subgroups by {column}",
                "caption": "Not shown: the best configuration has no stored predictions with this column."}
    chart = pd.DataFrame({
        "label": [f"{v} (n={n})" for v, n in zip(rows[column], rows["n_images"])],
        "estimate": rows["macro_f1_mean"], "ci_low": rows["macro_f1_ci_low"], "ci_high": rows["macro_f1_ci_high"],
        "chance": rows["chance_macro_f1"], "muted": ~rows["enough"].astype(bool),
    })
    gap = rows.iloc[0]
    gap_text = ("worst-group gap: fewer than two subgroups have enough images" if pd.isna(gap["worst_group_gap"]) else
                f"worst-group gap {gap['worst_group_gap']:.2f} [{gap['worst_group_gap_ci_low']:.2f}, "
                f"{gap['worst_group_gap_ci_high']:.2f}] ({gap['best_group']} − {gap['worst_group']})")
    figure = figures.interval_plot(chart, f"Macro-F1 by {column}: {best.label}\n{gap_text}",
                                   "macro-F1 over the task's classes", float(best.stats.get("stratified_macro_f1")),
                                   "chance on the whole test set (stratified)", (0.0, 1.0))
    path = figures.save(figure, folder / f"subgroup-{slug(column)}.svg")
    return _item(root, path, f"Subgroups by {column}",
                 f"Macro-F1 over all the task's classes per {column} value for the best configuration, with 95% "
                 f"patient-bootstrap intervals; each black tick is that subgroup's own chance level (its best "
                 f"dummy on that subgroup), the dashed line the whole test set's. Grey rows have fewer than "
                 f"{MIN_SUBGROUP_N} test images and are left out of the worst-group gap (best − worst subgroup, "
                 "with its paired interval).")


def _learning_curve(root: Path, folder: Path, page: TaskPage) -> dict:
    no_labels = frozenset(c.head for c in page.configurations if c.values["head"].title)  # marked: no labels
    path = figures.save(figures.learning_curve(page.curves.points, f"Learning curves: {page.title}", no_labels),
                        folder / "learning-curve.svg")
    return _item(root, path, "Learning curves",
                 "Macro-F1 against training patients (log scale; the mean over subsample draws and folds) per "
                 "configuration, with its 95% patient-bootstrap band. The test patients are the same at every "
                 "size, and each smaller training part is a subsample of the larger ones (nested draws), drawn "
                 "from the training patients only. Dashed: the stratified dummy (chance) at each size. The table "
                 "below gives the numbers, the area under each curve and the smallest size tied with full data.")


def _strip(root: Path, folder: Path, runs: list[Run], page: TaskPage) -> dict | None:
    logs = [pd.read_csv(r.dir / "generation_log.csv", dtype=str, keep_default_na=False)
            for r in runs if (r.dir / "generation_log.csv").exists()]
    logs = [log[log["task"] == page.task] for log in logs if "task" in log]
    log = pd.concat(logs, ignore_index=True) if logs else pd.DataFrame()
    if log.empty:
        return None
    caption = ("Real training images (left of each pair) and synthetic images generated from them, per augmenter, "
               "under their class names; synthetic images come from the training part only.")
    try:
        path = synthetic_strip(log, root / folder / "strip.png", class_names={page.task: page.class_names},
                               title=f"Real and synthetic training images: {page.title}")
    except SkinbenchError as exc:
        return {"anchor": "strip", "path": None, "title": "Real and synthetic images", "caption": f"Not shown: {exc}"}
    return _item(root, path, "Real and synthetic images", caption)


def _item(root: Path, path: Path, title: str, caption: str) -> dict:
    return {"anchor": path.stem, "path": path.relative_to(root).as_posix(), "title": title, "caption": caption}
