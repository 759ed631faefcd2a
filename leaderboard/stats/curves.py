"""Learning curves with patient-level intervals: macro-F1 against training size, on the leaderboard's resamples.

Every point of every configuration is scored on the task's one resample plan (:func:`task_plan`, the plan
the leaderboard uses), so a point against full data, a configuration against the stratified dummy at the
same size, and two backbones at equal size are all paired differences. The draws of a point (its
subsamples) are averaged like seeds: the interval is for the procedure "train on this many patients"
over both the test patients and the choice of training patients.

The chance line at a point is the best of the dummies (most-frequent, uniform, stratified) trained on the
point's first draw, chosen on the point estimates as the leaderboard chooses: a constant predictor is never
above it. Δ vs the stratified dummy is given too. One draw rather than all of them because each prior needs
its own Monte-Carlo expectation on every resample (most of the time the curve statistics take), and the priors
of a point's draws differ little.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from skinbench.data.curves import parse_point
from skinbench.metrics import macro_f1_batch
from skinbench.vocabulary import DUMMY_HEADS, FULL_DATA, STRATIFIED

from .bootstrap import N_BOOT, CellDraws, bootstrap_task, task_plan
from .inference import ALPHA, Estimate, _direction, directional_holm, estimate, holm
from .predictions import load_predictions

SEPARATOR = "\x00"
DRAWS_PER_SEED = 10_000
"""A curve row's (seed, draw) becomes one evaluation, like a seed: seed × this + draw."""
CONFIG_LABELS = ("backbone_label", "augmenter_label", "head_label")
MORE_DATA = ("helps", "no_difference", "hurts")


@dataclass
class CurveStats:
    """``points``: one row per (configuration, point) with macro-F1, Δ vs stratified and Δ vs the point's best,
    each with a 95% interval. ``summary``: one row per configuration: area under the curve, smallest size tied
    with full data, and whether the last step added data that helped."""

    points: pd.DataFrame
    summary: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.points.empty

    def of_task(self, dataset: str, task: str) -> CurveStats | None:
        """One task's curves, or None when it has none."""
        if self.empty:
            return None
        keep = (self.points["dataset"] == dataset) & (self.points["task"] == task)
        if not keep.any():
            return None
        summary = self.summary[(self.summary["dataset"] == dataset) & (self.summary["task"] == task)] \
            if len(self.summary) else self.summary
        return CurveStats(self.points[keep], summary)


def learning_curves(results: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0, alpha: float = ALPHA) -> CurveStats:
    """The learning curves of every task whose rows hold curve points (rows from ``read_results``)."""
    ok = results[results["status"] == "ok"] if len(results) else results
    if "point" not in ok or not (ok["point"] != FULL_DATA).any():
        return CurveStats(pd.DataFrame(), pd.DataFrame())
    curved = ok.groupby(["dataset", "task"])["point"].transform(lambda p: (p != FULL_DATA).any())
    chance = ok["head"].isin(DUMMY_HEADS) & (ok["draw"] == 0)
    rows = ok[curved.astype(bool) & (~ok["head"].isin(DUMMY_HEADS) | chance)]
    keyed = rows.assign(stored_cell=rows["cell_id"], stored_seed=rows["seed"],
                        cell_id=rows["cell_id"] + SEPARATOR + rows["point"],
                        seed=rows["seed"].astype(int) * DRAWS_PER_SEED + rows["draw"].astype(int))
    points, summaries = [], []
    for (dataset, task), loaded in load_predictions(keyed).items():
        if not loaded.files:
            continue
        plan = task_plan(loaded, n_boot, seed)
        boots = bootstrap_task(loaded, plan, _macro_f1, seed)
        task_rows = rows[(rows["dataset"] == dataset) & (rows["task"] == task)]
        frame = _points(task_rows, boots, alpha)
        points.append(frame)
        summaries.append(_summary(frame, boots, alpha))
    points_frame = pd.concat(points, ignore_index=True) if points else pd.DataFrame()
    summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
    if len(summary):
        up, down = directional_holm(summary["more_data_p_up"].to_numpy(float),
                                    summary["more_data_p_down"].to_numpy(float), alpha)
        summary["more_data"] = [_direction(u, d, alpha, MORE_DATA) for u, d in zip(up, down)]
    return CurveStats(points_frame, summary)


def _macro_f1(cm: np.ndarray) -> dict[str, np.ndarray]:
    return {"macro_f1": macro_f1_batch(cm)}


def _points(rows: pd.DataFrame, boots: dict[str, CellDraws], alpha: float) -> pd.DataFrame:
    """One row per (configuration, point), with Δ vs the stratified dummy and vs the point's best dummy (the
    chance line: a constant predictor is never above it)."""
    sizes = rows.groupby(["cell_id", "point"]).agg(
        n_train_patients=("n_train_patients", "mean"), n_train_images=("n_train", "mean"),
        draws=("draw", "nunique"), head=("head", "first"),
        **{label: (label, "first") for label in CONFIG_LABELS}, dataset=("dataset", "first"), task=("task", "first"))
    dummy_rows = rows[rows["head"].isin(DUMMY_HEADS)]
    dummies = dict(zip(dummy_rows["head"], dummy_rows["cell_id"]))
    out = []
    for (cell, point), size in sizes.iterrows():
        draws = boots.get(cell + SEPARATOR + point)
        if draws is None:
            continue
        kind, value = parse_point(point)
        fit = combination([(1.0, draws)], alpha, (0.0, 1.0))
        row = {"dataset": size["dataset"], "task": size["task"], "cell_id": cell, "head": size["head"],
               **{label: size[label] for label in CONFIG_LABELS}, "point": point, "kind": kind, "value": value,
               "n_train_patients": size["n_train_patients"], "n_train_images": size["n_train_images"],
               "draws": int(size["draws"]), "macro_f1": fit.value, "macro_f1_ci_low": fit.low,
               "macro_f1_ci_high": fit.high}
        chance = {head: boots[key] for head, cell_id in dummies.items()
                  if (key := f"{cell_id}{SEPARATOR}{point}") in boots}
        if chance and size["head"] not in DUMMY_HEADS:
            best = max(chance, key=lambda head: chance[head].point["macro_f1"])  # chosen on the point estimates
            row.update(best_dummy=best, best_dummy_macro_f1=chance[best].point["macro_f1"])
            for name, baseline in (("stratified", chance.get(STRATIFIED)), ("best_dummy", chance[best])):
                if baseline is not None:
                    delta = combination([(1.0, draws), (-1.0, baseline)], alpha)
                    row.update({f"delta_vs_{name}": delta.value, f"delta_vs_{name}_ci_low": delta.low,
                                f"delta_vs_{name}_ci_high": delta.high, f"p_vs_{name}": delta.p_greater})
        out.append(row)
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame
    for name in ("stratified", "best_dummy"):
        frame[f"p_vs_{name}_holm"] = holm(frame.get(f"p_vs_{name}", pd.Series(np.nan, index=frame.index))
                                          .to_numpy(float), alpha)
    return _versus_best(frame.sort_values(["n_train_patients", "macro_f1"], ascending=[True, False],
                                          ignore_index=True), boots, alpha)


def _versus_best(frame: pd.DataFrame, boots: dict[str, CellDraws], alpha: float) -> pd.DataFrame:
    """Δ vs the best model configuration at the same point: two backbones at equal training size, paired."""
    models = frame[~frame["head"].isin(DUMMY_HEADS)]
    for point, group in models.groupby("point"):
        best = group.loc[group["macro_f1"].idxmax(), "cell_id"]
        reference = boots[best + SEPARATOR + point]
        for index, cell in zip(group.index, group["cell_id"]):
            delta = combination([(1.0, boots[cell + SEPARATOR + point]), (-1.0, reference)], alpha)
            frame.loc[index, ["delta_vs_best", "delta_vs_best_ci_low", "delta_vs_best_ci_high"]] = \
                [delta.value, delta.low, delta.high]
    return frame


def _summary(points: pd.DataFrame, boots: dict[str, CellDraws], alpha: float) -> pd.DataFrame:
    """Per model configuration: AULC, the smallest size tied with full data, and the last step's gain."""
    rows = []
    models = points[~points["head"].isin(DUMMY_HEADS)] if len(points) else points
    for cell, curve in models.groupby("cell_id", sort=False):
        curve = curve.sort_values("n_train_patients")
        if len(curve) < 2:
            continue
        draws = [boots[cell + SEPARATOR + p] for p in curve["point"]]
        x = np.log(curve["n_train_patients"].to_numpy(float))
        weights = _area(x, np.eye(len(x)))  # the area is linear in the points' macro-F1
        aulc = combination(list(zip(weights, draws)), alpha, (0.0, 1.0))
        last, previous = draws[-1], draws[-2]
        step = combination([(1.0, last), (-1.0, previous)], alpha)
        row = {"dataset": curve["dataset"].iloc[0], "task": curve["task"].iloc[0], "cell_id": cell,
               **{label: curve[label].iloc[0] for label in CONFIG_LABELS}, "points": len(curve),
               "aulc": aulc.value, "aulc_ci_low": aulc.low, "aulc_ci_high": aulc.high,
               "more_data_from": curve["point"].iloc[-2], "more_data_to": curve["point"].iloc[-1],
               "more_data_delta": step.value, "more_data_ci_low": step.low, "more_data_ci_high": step.high,
               "more_data_p_up": step.p_greater, "more_data_p_down": step.p_less}
        row.update(_smallest_tied(curve, draws, alpha))
        rows.append(row)
    return pd.DataFrame(rows)


def combination(terms: list[tuple[float, CellDraws]], alpha: float = ALPHA,
                bounds: tuple[float, float] | None = None) -> Estimate:
    """Σ weight × macro-F1 of curve points (a point, a Δ, a step, an area) with its interval.

    Its variance has two parts. The patient bootstrap's (× the cv factor) holds the fitted models fixed, so
    it misses how much the score moves with *which* training patients a small point drew; that part is the
    variance between the point's subsample draws of the same combination, over the number of draws (a
    full-data point has one draw and adds nothing), with Welch–Satterthwaite degrees of freedom for the sum.
    Without that part the interval at 8 of 120 training patients covered the truth in 75% of simulated data
    sets (``benchmarks/curve_coverage.py``)."""
    value = sum(w * c.point["macro_f1"] for w, c in terms)
    resampled = sum(w * c.draws["macro_f1"] for w, c in terms)
    n = min(c.n_patients for _, c in terms)
    inflation = max(c.inflation for _, c in terms)
    finite = resampled[np.isfinite(resampled)]
    between, n_draws = _between_draws(terms)
    if between <= 0 or len(finite) < 2 or n < 2 or np.var(finite) == 0:
        return estimate(value, resampled, n, alpha, bounds, inflation)
    raw = np.var(finite, ddof=1)
    patients = raw * n / (n - 1) * inflation
    total = patients + between
    # Welch–Satterthwaite degrees of freedom: the between-draw part rests on only n_draws − 1 of them
    df = total ** 2 / (patients ** 2 / (n - 1) + between ** 2 / (n_draws - 1))
    n_effective = max(2, int(np.floor(df)) + 1)
    return estimate(value, resampled, n_effective, alpha, bounds, total / (raw * n_effective / (n_effective - 1)))


def _between_draws(terms: list[tuple[float, CellDraws]]) -> tuple[float, int]:
    """Variance between subsample draws of Σ weight × the draw's macro-F1 (seeds, splits and folds averaged), over
    the number of draws, and that number; a term with one draw (full data, a chance line) is the same in every
    draw."""
    per_draw = [(w, _draw_scores(c)) for w, c in terms]
    draws = sorted({d for _, scores in per_draw if len(scores) > 1 for d in scores})
    if len(draws) < 2:
        return 0.0, len(draws)
    values = [sum(w * (scores[d] if len(scores) > 1 else next(iter(scores.values()))) for w, scores in per_draw)
              for d in draws]
    return float(np.var(values, ddof=1) / len(draws)), len(draws)


def _draw_scores(cell: CellDraws) -> dict[int, float]:
    """Each subsample draw's macro-F1 (its seeds and splits averaged)."""
    by_draw: dict[int, list[float]] = {}
    for (_, evaluation), (point, _) in cell.evaluations.items():
        by_draw.setdefault(evaluation % DRAWS_PER_SEED, []).append(point["macro_f1"])
    return {draw: float(np.nanmean(values)) for draw, values in by_draw.items()}


def _area(x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """Normalised area under y(x) by the trapezoid rule (y: (points,) or (points, draws)): a mean macro-F1 over
    the curve's range of log training patients."""
    if x[-1] == x[0]:
        return np.mean(y, axis=0)
    return np.trapezoid(y, x, axis=0) / (x[-1] - x[0])


def _smallest_tied(curve: pd.DataFrame, draws: list[CellDraws], alpha: float) -> dict:
    """The smallest point whose macro-F1 a paired one-sided test (Holm over the curve's points) cannot put
    below full data's; empty without a full-data point."""
    full = [i for i, p in enumerate(curve["point"]) if p == FULL_DATA]
    if not full:
        return {"smallest_tied": None, "smallest_tied_patients": np.nan, "smallest_tied_share": np.nan}
    reference = draws[full[0]]
    smaller = [i for i in range(len(draws)) if i != full[0]]
    p_below = holm(np.array([combination([(1.0, reference), (-1.0, draws[i])], alpha).p_greater for i in smaller]),
                   alpha)
    tied = [i for i, p in zip(smaller, p_below) if not p < alpha] + full
    first = min(tied, key=lambda i: curve["n_train_patients"].iloc[i])
    patients = curve["n_train_patients"].to_numpy(float)
    return {"smallest_tied": curve["point"].iloc[first], "smallest_tied_patients": patients[first],
            "smallest_tied_share": patients[first] / patients[full[0]]}
