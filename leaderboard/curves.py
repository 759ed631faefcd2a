"""The label-efficiency tables: learning curves laid out as text (numbers from :mod:`.stats.curves`)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from skinbench.api import SkinbenchError
from skinbench.vocabulary import MISSING, format_interval, format_number

from .figures import learning_curve, save
from .layout import Report, Section, Table
from .stats import ALPHA, N_BOOT
from .stats.curves import CurveStats

MORE_DATA_TEXT = {"helps": "more data helps", "no_difference": "no difference", "hurts": "more data hurts"}


def curve_caption(n_boot: int) -> str:
    return (f"Macro-F1 at each training size with its 95% patient-bootstrap interval ({n_boot} resamples of the "
            "test patients, which never change along a curve, widened by the variance between subsample draws; "
            "each point averages its seeds, draws and folds). Column headers give the point and its mean training "
            "patients. 'Above chance at': the points whose Δ vs the best dummy is > 0 after Holm over every "
            "configuration and point. AULC: the mean macro-F1 over the curve's range of log training patients, with its interval. 'Tied with full data from': the "
            "smallest size whose macro-F1 a paired one-sided test cannot put below full data's (Holm over the "
            "curve's points; not a proof of equality). 'Last step': the paired Δ between the two largest sizes, "
            "Holm-corrected over both directions and every configuration.")


def label_efficiency_table(curves: CurveStats, dataset: str, digits: int, n_boot: int = N_BOOT) -> Table | None:
    """One row per model configuration of the dataset's curved tasks: macro-F1 per point, AULC, the
    smallest size tied with full data and whether the last step helped."""
    points = curves.points[curves.points["dataset"] == dataset] if not curves.empty else pd.DataFrame()
    if points.empty:
        return None
    summary = curves.summary.set_index("cell_id")
    models = points[~points["head"].astype(str).str.startswith("dummy:")]
    sizes = points.groupby("point")["n_train_patients"].mean().sort_values()
    rows = []
    for cell, curve in models.groupby("cell_id", sort=False):
        first = curve.iloc[0]
        row = {"task": first["task"], "backbone": first["backbone_label"], "augmenter": first["augmenter_label"],
               "head": first["head_label"]}
        by_point = curve.set_index("point")
        for point, patients in sizes.items():
            header = f"{point} ({patients:.0f} patients)"
            row[header] = (format_interval(by_point.loc[point, "macro_f1"], by_point.loc[point, "macro_f1_ci_low"],
                                           by_point.loc[point, "macro_f1_ci_high"], digits)
                           if point in by_point.index else MISSING)
        above = curve.loc[curve.get("p_vs_best_dummy_holm", pd.Series(dtype=float)) < ALPHA, "point"]
        row["above chance at"] = ", ".join(p for p in sizes.index if p in set(above)) or "none"
        if cell in summary.index:
            s = summary.loc[cell]
            row["AULC"] = format_interval(s["aulc"], s["aulc_ci_low"], s["aulc_ci_high"], digits)
            row["tied with full data from"] = (f"{s['smallest_tied']} ({s['smallest_tied_share']:.0%} of patients)"
                                               if isinstance(s["smallest_tied"], str) else MISSING)
            row["last step"] = (f"{format_interval(s['more_data_delta'], s['more_data_ci_low'], s['more_data_ci_high'], digits, signed=True)}"
                                f" {MORE_DATA_TEXT.get(s['more_data'], '')}".strip())
        rows.append(row)
    return Table(title="Label efficiency", caption=curve_caption(n_boot), frame=pd.DataFrame(rows))


def chance_table(curves: CurveStats, dataset: str, digits: int) -> Table | None:
    """The best dummy's macro-F1 at each point (which dummy, in brackets): the chance line of the curves."""
    points = curves.points[(curves.points["dataset"] == dataset)
                           & curves.points["head"].astype(str).str.startswith("dummy:")] if not curves.empty else None
    if points is None or points.empty:
        return None
    best = points.sort_values("macro_f1").groupby(["task", "point"], sort=False).tail(1)
    best = best.assign(text=[f"{format_number(v, digits)} ({h.removeprefix('dummy:')})"
                             for v, h in zip(best["macro_f1"], best["head"])])
    order = list(pd.unique(points.sort_values("n_train_patients")["point"]))
    frame = best.pivot(index="task", columns="point", values="text").reindex(columns=order).reset_index()
    return Table(title="Label efficiency: chance line",
                 caption="Macro-F1 of the best dummy (most-frequent, uniform or stratified, chosen on the point "
                         "estimate) trained on each point's first subsample draw.", frame=frame.fillna(MISSING))


def curves_report(curves: CurveStats, digits: int = 2, n_boot: int = N_BOOT) -> Report:
    """``skinbench leaderboard --curves``: the label-efficiency tables per dataset; CSV is the tidy frame of
    every (configuration, point) joined with its configuration's summary."""
    datasets = list(pd.unique(curves.points["dataset"])) if not curves.empty else []
    sections = [Section(title=f"Dataset {d}", tables=[t for t in (label_efficiency_table(curves, d, digits, n_boot),
                                                                   chance_table(curves, d, digits)) if t is not None])
                for d in datasets]
    warnings = [] if datasets else ["no learning-curve rows: set protocol.train_fractions or protocol.shots"]
    frame = curves.points
    if not curves.empty and len(curves.summary):
        summary = curves.summary.drop(columns=["dataset", "task", "backbone_label", "augmenter_label", "head_label"])
        frame = frame.merge(summary, on="cell_id", how="left")
    return Report(sections=sections, warnings=warnings, frame=frame)


def plot_curves(curves: CurveStats, out: str | Path) -> list[Path]:
    """One learning-curve figure per task: ``out`` itself for one task, ``<stem>-<dataset>-<task><suffix>`` for more."""
    if curves.empty:
        raise SkinbenchError("no learning-curve rows to plot: set protocol.train_fractions or protocol.shots")
    out = Path(out)
    groups = list(curves.points.groupby(["dataset", "task"], sort=False))
    written = []
    for (dataset, task), points in groups:
        path = out if len(groups) == 1 else out.with_name(f"{out.stem}-{dataset}-{task}{out.suffix or '.png'}")
        written.append(save(learning_curve(points, f"Learning curves: {dataset}/{task}"), path))
    return written
