"""The patient bootstrap: one resample plan per task, every configuration scored on it (so comparisons are paired)."""
from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from skinbench.api import SkinbenchError
from skinbench.metrics import label_metrics_batch

from .inference import ALPHA, Estimate, estimate
from .predictions import TaskPredictions

N_BOOT = 2000
DUMMY_POINT_DRAWS = 1000
"""Monte-Carlo draws of a random dummy on the observed test labels (the runner's default)."""
DUMMY_DRAWS = (100, 1000)
"""Monte-Carlo draws per distinct resampled label count vector of a random dummy (min, max)..."""
DUMMY_BUDGET = 20_000
"""...sharing this many confusion matrices per dummy and split (large test sets: fewer draws each)."""
METRIC_RANGE = {"mcc": (-1.0, 1.0), "cohen_kappa": (-1.0, 1.0), "qwk": (-1.0, 1.0)}
"""Where a metric's interval is clipped; the others lie in [0, 1]."""

MetricFn = Callable[[np.ndarray], dict[str, np.ndarray]]


# ---------------------------------------------------------------- the resample plan and its draws


@dataclass
class ResamplePlan:
    """Which splits and patient counts every resample of one task uses (shared by all its configurations).

    ``choice[b, j]`` is the split (an index into ``splits``) that resample ``b`` draws at position
    ``j``; ``weights[split]`` holds the multinomial patient counts of every (b, j) that drew it, in
    row-major order of ``choice == index``.
    """

    splits: list[int]
    choice: np.ndarray
    weights: dict[int, np.ndarray]

    @classmethod
    def draw(cls, n_patients: dict[int, int], n_boot: int, seed: int, key: str, shared: bool = False) -> ResamplePlan:
        """``shared``: every split holds the same patients (cv repeats), so each resample draws patients once,
        uses the same counts in every split and averages all of them (splits are not resampled)."""
        if n_boot < 1:
            raise SkinbenchError(f"the bootstrap needs at least one resample, got {n_boot}")
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        splits = sorted(n_patients)
        if shared:
            n = n_patients[splits[0]]
            counts = rng.multinomial(n, np.full(n, 1 / n), size=n_boot)
            return cls(splits, np.tile(np.arange(len(splits)), (n_boot, 1)), {split: counts for split in splits})
        choice = rng.integers(len(splits), size=(n_boot, len(splits)))
        weights = {split: rng.multinomial(n_patients[split], np.full(n_patients[split], 1 / n_patients[split]),
                                          size=int((choice == index).sum()))
                   for index, split in enumerate(splits)}
        return cls(splits, choice, weights)

    def combine(self, per_split: dict[int, np.ndarray]) -> np.ndarray:
        """(n_boot,) values: each resample's mean over the splits it drew of those splits' values."""
        out = np.full(self.choice.shape, np.nan)
        for index, split in enumerate(self.splits):
            if split in per_split:
                out[self.choice == index] = per_split[split]
        return _nanmean(out, axis=1)


@dataclass
class CellDraws:
    """One configuration's scores: per (split, seed) on that split's resamples, and as reported."""

    evaluations: dict[tuple[int, int], tuple[dict[str, float], dict[str, np.ndarray]]]
    point: dict[str, float]
    draws: dict[str, np.ndarray]
    n_patients: int   # distinct test patients scored (over splits): the sample size of :func:`estimate`
    inflation: float = 1.0  # variance factor of the scheme (:meth:`TaskPredictions.variance_inflation`)

    def estimate(self, metric: str, alpha: float = ALPHA) -> Estimate:
        return estimate(self.point[metric], self.draws[metric], self.n_patients, alpha, METRIC_RANGE.get(metric, (0, 1)),
                        self.inflation)

    def minus(self, other: CellDraws, metric: str = "macro_f1", alpha: float = ALPHA) -> Estimate:
        """The paired difference self − other on the same resamples."""
        return estimate(self.point[metric] - other.point[metric], self.draws[metric] - other.draws[metric],
                        min(self.n_patients, other.n_patients), alpha, inflation=max(self.inflation, other.inflation))


def leaderboard_metrics(ordinal: bool) -> MetricFn:
    return lambda cm: label_metrics_batch(cm, ordinal)


def macro_f1_over_classes(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Macro-F1 averaged over *all* the task's classes (absent and never predicted counts 0).

    For subgroups: scikit-learn's default averages over the classes present, so a constant
    predictor scores 1.0 on a subgroup that holds only its class.
    """
    true_n, pred_n, tp = cm.sum(2), cm.sum(1), np.diagonal(cm, axis1=1, axis2=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(true_n + pred_n > 0, 2 * tp / (true_n + pred_n), 0.0)
    return {"macro_f1": np.where(cm.sum((1, 2)) > 0, f1.mean(1), np.nan)}


def bootstrap_task(predictions: TaskPredictions, plan: ResamplePlan, metric_fn: MetricFn, seed: int = 0,
                   select: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None) -> dict[str, CellDraws]:
    """Point estimates and resampled scores of every configuration of one task.

    ``select`` restricts scoring to some test images (a subgroup); the resampled patients stay the
    whole test part's, so subgroup sizes vary across resamples as they would across test sets.
    """
    k = len(predictions.classes)
    evaluations: dict[str, dict] = {}
    scored: set[str] = set()
    for split, files in predictions.files.items():
        reference = next(iter(files.values()))
        keep = np.ones(len(reference.y), bool) if select is None else select(reference.columns)
        scored |= set(predictions.patients[split][np.unique(reference.patient[keep])])
        weights = np.vstack([np.ones((1, len(predictions.patients[split])), int), plan.weights[split]])
        expectations: dict[bytes, dict[str, np.ndarray]] = {}
        for (cell_id, run_seed), stored in files.items():
            keep = np.ones(len(stored.y), bool) if select is None else select(stored.columns)
            patient, y = stored.patient[keep], stored.y[keep]
            n_patients = weights.shape[1]
            if stored.prior is None:
                counts = np.bincount((patient * k + y) * k + stored.pred[keep], minlength=n_patients * k * k)
                values = metric_fn((weights @ counts.reshape(n_patients, k * k)).reshape(-1, k, k).astype(float))
            else:
                parts = len(stored.prior)
                cache_key = stored.prior.tobytes() + (stored.part.tobytes() if parts > 1 else b"")
                if cache_key not in expectations:  # true class counts per patient, in the block of its part
                    cells = (patient * parts + stored.part[keep]) * k + y
                    true_counts = np.bincount(cells, minlength=n_patients * parts * k).reshape(n_patients, parts * k)
                    rng = np.random.default_rng([seed, zlib.crc32(stored.prior.tobytes()), split])
                    expectations[cache_key] = _dummy_expectation(weights @ true_counts, stored.prior, metric_fn, rng)
                values = expectations[cache_key]
            evaluations.setdefault(cell_id, {})[(split, run_seed)] = (
                {m: float(v[0]) for m, v in values.items()}, {m: v[1:] for m, v in values.items()})
    inflation = predictions.variance_inflation()
    return {cell_id: _combine(plan, runs, len(scored), inflation) for cell_id, runs in evaluations.items()}


def _dummy_expectation(class_counts: np.ndarray, prior: np.ndarray, metric_fn: MetricFn,
                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Expected metrics of a classifier drawing labels from ``prior``, for every row of true class counts.

    ``prior`` is (parts, k) and each row of ``class_counts`` holds parts × k counts: under cv each outer
    fold's dummy draws from its own training prior. Its confusion matrix is a sum of independent
    multinomial rows (true class t of part p: counts[p, t] draws from prior[p]), so only the distinct
    count vectors need Monte-Carlo draws. Row 0 (the observed test
    labels: the point estimate) gets :data:`DUMMY_POINT_DRAWS`, as many as the runner's dummies;
    the distinct resampled rows share :data:`DUMMY_BUDGET`, whose Monte-Carlo noise (SD ≈ 0.01 at
    100 draws on 16 images, less on more) adds well under 1% to the bootstrap variance.
    """
    unique, inverse = np.unique(class_counts[1:], axis=0, return_inverse=True)
    point = _expected_metrics(class_counts[:1], prior, metric_fn, rng, DUMMY_POINT_DRAWS)
    resampled = _expected_metrics(unique, prior, metric_fn, rng,
                                  int(np.clip(DUMMY_BUDGET // max(len(unique), 1), *DUMMY_DRAWS)))
    return {metric: np.concatenate([point[metric], resampled[metric][inverse.ravel()]]) for metric in point}


def _expected_metrics(counts: np.ndarray, prior: np.ndarray, metric_fn: MetricFn, rng: np.random.Generator,
                      draws: int) -> dict[str, np.ndarray]:
    n_parts, k = prior.shape
    draws = 1 if (prior.max(1) == 1).all() else draws  # the most-frequent dummy is deterministic
    chunk = max(1, 2_000_000 // (draws * k * k))  # bounds memory on large test sets
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(counts), chunk):
        part = counts[start:start + chunk]
        cm = np.stack([sum(rng.multinomial(part[:, p * k + t], prior[p], size=(draws, len(part)))
                           for p in range(n_parts)) for t in range(k)], axis=2)
        for metric, values in metric_fn(cm.reshape(-1, k, k).astype(float)).items():
            parts.setdefault(metric, []).append(_nanmean(values.reshape(draws, len(part)), axis=0))
    return {metric: np.concatenate(chunks) for metric, chunks in parts.items()}


def _combine(plan: ResamplePlan, runs: dict[tuple[int, int], tuple[dict, dict]], n_patients: int,
             inflation: float = 1.0) -> CellDraws:
    """Average seeds within each split, then splits: the point as the reported mean, draws per the plan."""
    metrics = list(next(iter(runs.values()))[0])
    by_split: dict[int, list] = {}
    for (split, _), run in runs.items():
        by_split.setdefault(split, []).append(run)
    point = {m: _nanmean(np.array([_nanmean(np.array([r[0][m] for r in rs])) for rs in by_split.values()]))
             for m in metrics}
    draws = {m: plan.combine({s: _nanmean(np.stack([r[1][m] for r in rs]), axis=0) for s, rs in by_split.items()})
             for m in metrics}
    return CellDraws(runs, point, draws, n_patients, inflation)


def _nanmean(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (e.g. QWK of a nominal task) stay NaN
        return np.nanmean(values, axis=axis)


def task_plan(predictions: TaskPredictions, n_boot: int, seed: int) -> ResamplePlan:
    """The task's plan, a function of the seed, the task's name and its test patients only."""
    sizes = {split: len(patients) for split, patients in predictions.patients.items()}
    return ResamplePlan.draw(sizes, n_boot, seed, f"{predictions.dataset}\x00{predictions.task}", predictions.cv)
