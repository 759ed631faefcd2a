"""Leaderboard statistics, computed from stored results and predictions only (no model is re-run).

Why a bootstrap over test *patients*: a test part holds a handful of patients, which patients they
are moves macro-F1 as much as the seed does or more (the leaderboard's variance table shows how
much), and images of one patient are correlated. So every
interval and p-value here comes from a cluster bootstrap that resamples test patients, scores every
seed on each resample and averages the seeds (thesis protocol: seeds are averaged).

How, so that it stays cheap and every comparison is paired:

- Under patient-grouped cross-validation the outer folds' predictions of one (configuration, seed,
  repeat) are joined into one test part holding every patient exactly once (each predicted by a
  model that never saw them), so "split" below is a cv repeat and the resamples draw from all patients.
- One :class:`ResamplePlan` per (dataset, task), seeded by the task's name: multinomial patient
  counts per resample. With several test splits, a resample first draws splits with replacement and
  then patients within each drawn split (a two-stage bootstrap), so split-to-split variation enters
  the intervals. Every configuration of the task is scored on the same plan, hence any difference
  between two configurations (Δ vs a dummy, best vs other, augmenter vs ``none``) is paired.
- Per-patient confusion counts; the confusion matrices of all resamples are one matrix product
  (weights @ counts) and the metrics come from them through
  :func:`skinbench.metrics.label_metrics_batch`, the function that scores the dummies.
- A random dummy is scored on a resample as its *expected* metric on the resampled test labels when
  it draws from its training prior (the stored probability rows), by Monte-Carlo over confusion
  matrices (each true class's row is multinomial). The point estimate is the same estimator with
  every weight 1, so point and intervals agree.

Intervals and p-values (:func:`estimate`) use the bootstrap standard error with a Student t
reference on n − 1 degrees of freedom, n the distinct test patients, and Hesterberg's small-sample
expansion √(n / (n − 1)) of the SE (the bootstrap's variance is (n − 1)/n too small). Why not
percentile intervals: on simulated classifiers of known macro-F1 (the simulation of
tests/test_stats.py, 1,000 test sets per size) the 95% percentile interval covered the truth in 82%
of test sets of 8 patients, 88% of 15 and 93% of 30; this interval in 91%, 92% and 94% (BCa: 86%,
90%, 94%), so tiny test sets still get intervals somewhat too narrow. A percentile p-value cannot go below
1 / (B + 1), so with Holm over 2m hypotheses no verdict could pass once 2m / (B + 1) ≥ α. The
interval and the p-value come from the same t, so a p below α/2 is an interval excluding 0.
Verdicts (above chance: Δ vs the best dummy > 0; below chance: Δ vs stratified < 0) are
Holm-corrected (statsmodels) over both directions of every model configuration of one leaderboard; ties with the best are Holm-corrected within each task.
"""
from __future__ import annotations

import gc
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy.special import stdtr, stdtrit
from skinbench.api import DataError, SkinbenchError
from skinbench.metrics import label_metrics_batch
from skinbench.store import ResultsStore
from skinbench.vocabulary import (
    DUMMY_HEADS,
    EFFECTS,
    LABEL_METRICS,
    METRICS,
    MIN_TEST_IMAGES,
    REAL_ONLY,
    STRATIFIED,
    VERDICTS,
)
from statsmodels.stats.multitest import multipletests

N_BOOT = 2000
ALPHA = 0.05
POWER = 0.8
DUMMY_POINT_DRAWS = 1000
"""Monte-Carlo draws of a random dummy on the observed test labels (the runner's default)."""
DUMMY_DRAWS = (100, 1000)
"""Monte-Carlo draws per distinct resampled label count vector of a random dummy (min, max)..."""
DUMMY_BUDGET = 20_000
"""...sharing this many confusion matrices per dummy and split (large test sets: fewer draws each)."""
MIN_SUBGROUP_N = 10
PREDICTION_COLUMNS = ("group", "y_true", "y_pred")
"""Decoded into :class:`StoredPrediction` arrays; every other non-probability column is kept as text."""
METRIC_RANGE = {"mcc": (-1.0, 1.0), "cohen_kappa": (-1.0, 1.0), "qwk": (-1.0, 1.0)}
"""Where a metric's interval is clipped; the others lie in [0, 1]."""
CELL_KEYS = (
    "dataset", "task", "backbone", "augmenter", "head",
    "backbone_label", "augmenter_label", "head_label", "cell_id",
)
"""A configuration's identity; seeds and splits are aggregated away."""

MetricFn = Callable[[np.ndarray], dict[str, np.ndarray]]


# ---------------------------------------------------------------- descriptive aggregate over seeds


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: mean/std/n of every stored metric over its successful rows.

    Descriptive only (std is the sample std over seeds and splits, ddof=1); the intervals, Δs and
    verdicts the leaderboard prints come from :func:`configuration_stats`. The Δ columns compare the
    mean macro-F1 with the task's stored stratified and best dummy means.
    """
    flags = results.assign(n_ok=results["status"].eq("ok").astype(int), n_failed=results["status"].ne("ok").astype(int))
    counts = flags.groupby("cell_id", sort=False)[["n_ok", "n_failed"]].sum()  # a cell id fixes every other key
    ok = results[results["status"] == "ok"].astype({m: float for m in METRICS if m in results})
    metrics = [m for m in METRICS if m in ok]
    stats = ok.groupby("cell_id", sort=False)[metrics].agg(["mean", "std", "count"])
    stats.columns = [f"{metric}_{stat if stat != 'count' else 'n'}" for metric, stat in stats.columns]
    keys = results.drop_duplicates("cell_id").set_index("cell_id")[[k for k in CELL_KEYS if k != "cell_id"]]
    cells = keys.join(counts).join(stats, how="left").reset_index()[[*CELL_KEYS, *counts.columns, *stats.columns]]
    dummies = cells[cells["head"].isin(DUMMY_HEADS)]
    per_task = dummies.pivot_table(index=["dataset", "task"], columns="head", values="macro_f1_mean", aggfunc="max")
    baselines = pd.DataFrame({
        "stratified_macro_f1": per_task.get(STRATIFIED, pd.Series(np.nan, index=per_task.index)),
        "best_dummy_macro_f1": per_task.max(axis=1),
    }, index=per_task.index).reset_index()
    cells = cells.merge(baselines, on=["dataset", "task"], how="left")
    cells["delta_vs_stratified"] = cells["macro_f1_mean"] - cells["stratified_macro_f1"]
    cells["delta_vs_best_dummy"] = cells["macro_f1_mean"] - cells["best_dummy_macro_f1"]
    return cells


# ---------------------------------------------------------------- stored predictions


@dataclass
class StoredPrediction:
    """One stored (cell, seed, split) test prediction, as class indices per test image.

    Under cv it joins the outer folds: ``part`` says which fold predicted each image, and a dummy has
    one training prior per fold (``prior[part]``); under holdout there is one part."""

    patient: np.ndarray          # index into the split's patient list
    y: np.ndarray                # true class
    pred: np.ndarray | None      # predicted class (models)
    prior: np.ndarray | None     # (parts, classes): class probabilities of a dummy (its training prior per part)
    columns: dict[str, np.ndarray]  # the other stored columns as text (subgroups: region, skin_tone, ...)
    part: np.ndarray | None = None  # index into ``folds`` per image (None: all 0)
    folds: tuple[int, ...] = (0,)   # the outer fold of each part

    def __post_init__(self):
        if self.part is None:
            self.part = np.zeros(len(self.y), int)
        if self.prior is not None:
            self.prior = np.atleast_2d(self.prior)


@dataclass
class TaskPredictions:
    """Every stored prediction of one (dataset, task), per test split."""

    dataset: str
    task: str
    classes: list[str]
    ordinal: bool
    patients: dict[int, pd.Index]                               # split -> test patient ids
    files: dict[int, dict[tuple[str, int], StoredPrediction]]   # split -> (cell_id, seed) -> prediction
    missing: list[str]                                          # ok rows whose predictions file is absent:
                                                                # their configurations get no interval
    folds: int = 1                                              # outer folds per split (1: holdout)

    @property
    def cv(self) -> bool:
        return self.folds > 1

    def variance_inflation(self) -> float:
        """How much the patient bootstrap's variance is widened under cv (1 under holdout).

        The bootstrap holds the K fitted models fixed, but the folds' errors are correlated through
        their shared training patients, so it under-covers the procedure's performance (Bates, Hastie
        & Tibshirani, "Cross-validation: what does it estimate and how well does it do it?", JASA
        2023; measured here: 85–93% at 40 and 200 patients, :mod:`skinbench.leaderboard.simulation`).
        The correction is Nadeau & Bengio's ("Inference for the generalization error", Machine
        Learning 2003): the variance of the mean of K fold estimates is σ²(1/K + n_test/n_train)
        rather than σ²/K. With the pooled bootstrap variance standing for σ²/K that is a factor
        1 + K/(K − 1): 2.25 for 5 folds, which covered in 94–99% of the simulated data sets (40 and
        200 patients, three populations). Their 1/R for R repeated cross-validations is not used:
        repeats redraw folds of the *same* patients, and with it three repeats covered only 91–97%.
        """
        return 1 + self.folds / (self.folds - 1) if self.cv else 1.0


def predictions_file(run_dir: str | Path, cell_id: str, seed: int, split: int = 0, fold: int = 0) -> Path:
    """Where a run directory keeps one (cell, seed, split, fold)'s per-image test predictions."""
    return ResultsStore(run_dir).predictions_path(cell_id, int(seed), int(split), int(fold))


def load_predictions(results: pd.DataFrame) -> dict[tuple[str, str], TaskPredictions]:
    """The stored predictions of every successful row, grouped by (dataset, task).

    ``results`` needs the ``run_dir`` column that :func:`skinbench.leaderboard.read_results` adds.
    """
    ok = results[results["status"] == "ok"]
    if len(ok) and "run_dir" not in ok:
        raise SkinbenchError("the results have no 'run_dir' column, so their stored predictions cannot be "
                             "found: read them with skinbench.leaderboard.read_results(run_dir)")
    one_scheme(results)
    return {(str(dataset), str(task)): _task_predictions(str(dataset), str(task), rows)
            for (dataset, task), rows in ok.groupby(["dataset", "task"], sort=False)}


def one_scheme(results: pd.DataFrame) -> str:
    """The evaluation scheme of the rows; holdout and cv rows test different patients and cannot share a table."""
    schemes = sorted(set(results["scheme"])) if "scheme" in results and len(results) else ["holdout"]
    if len(schemes) > 1:
        runs = sorted({str(d) for d in results.get("run_dir", pd.Series(dtype=str))})
        raise SkinbenchError(f"the results mix evaluation schemes {schemes} (run directories: {', '.join(runs)}); "
                             "a holdout and a cross-validated run test different patients, so give each "
                             "leaderboard the runs of one scheme")
    return schemes[0]


def _task_predictions(dataset: str, task: str, rows: pd.DataFrame) -> TaskPredictions:
    loaded = TaskPredictions(dataset, task, [], bool(rows["ordinal"].iloc[0]), {}, {}, [])
    first_file: dict[int, Path] = {}
    incomplete: set[str] = set()
    folds = rows.get("fold", pd.Series(0, index=rows.index)).astype(int)
    expected = {split: set(f) for split, f in folds.groupby(rows["split"].astype(int))}
    loaded.folds = max((len(f) for f in expected.values()), default=1)
    for (cell_id, seed, split), runs in rows.assign(fold=folds).groupby(["cell_id", "seed", "split"], sort=False):
        cell_id, seed, split = str(cell_id), int(seed), int(split)
        runs = runs.sort_values("fold")
        paths = [predictions_file(r.run_dir, cell_id, seed, split, r.fold) for r in runs.itertuples(index=False)]
        absent = [str(p) for p in paths if not p.exists()]
        if absent or set(runs["fold"]) != expected[split]:  # an out-of-fold prediction must cover every patient
            loaded.missing += absent or [f"{paths[0].parent}/{cell_id}_s{seed}: outer fold(s) "
                                         f"{sorted(expected[split] - set(runs['fold']))} of split {split}"]
            incomplete.add(cell_id)
            continue
        frames = [pq.read_table(p).to_pydict() for p in paths]  # dicts of lists: ~3x faster than DataFrames
        frame, part = _join_folds(frames, paths)
        path = paths[0]
        classes = [c[len("proba_"):] for c in frame if c.startswith("proba_")]
        if not loaded.classes:
            loaded.classes = classes
        elif classes != loaded.classes:
            raise DataError(f"{path}: classes {classes} differ from {loaded.classes} in other predictions "
                            f"of {dataset}/{task}; the run directories mix incompatible runs")
        if split not in loaded.patients:  # under cv every repeat tests all patients: one index, shared resamples
            shared = next(iter(loaded.patients.values())) if loaded.cv and loaded.patients else None
            loaded.patients[split] = shared if shared is not None else pd.Index(pd.unique(np.array(frame["group"], str)))
            loaded.files[split], first_file[split] = {}, path
        stored = _stored_prediction(frame, loaded.classes, loaded.patients[split], runs["head"].iloc[0] in DUMMY_HEADS,
                                    path, part, tuple(int(f) for f in runs["fold"]))
        reference = next(iter(loaded.files[split].values()), None)
        if reference is not None and not _same_test_part(reference, stored, len(classes)):
            raise DataError(f"{path}: its test patients or labels differ from those in {first_file[split]} "
                            f"({dataset}/{task}, split {split}); one split's predictions must share one test part")
        loaded.files[split][(cell_id, seed)] = stored
    for split in list(loaded.files):  # a configuration scored on some of its seeds only would mislead
        loaded.files[split] = {key: f for key, f in loaded.files[split].items() if key[0] not in incomplete}
        if not loaded.files[split]:
            del loaded.files[split], loaded.patients[split]
    return loaded


def _join_folds(frames: list[dict[str, list]], paths: list[Path]) -> tuple[dict[str, list], np.ndarray]:
    """The outer folds' predictions of one (cell, seed, split) as one test part, and each image's fold index.

    Each patient must be in exactly one fold: a patient predicted twice would be counted twice."""
    if len(frames) == 1:
        return frames[0], np.zeros(len(frames[0]["group"]), int)
    seen: dict[str, Path] = {}
    for frame, path in zip(frames, paths):
        for group in set(frame["group"]):
            if group in seen:
                raise DataError(f"{path}: patient '{group}' is also in the test part of {seen[group]}; the outer "
                                "folds of one run must be patient-disjoint (the run directories mix fold assignments)")
            seen[str(group)] = path
    joined = {name: [v for frame in frames for v in frame.get(name, [None] * len(frame["group"]))] for name in frames[0]}
    return joined, np.repeat(np.arange(len(frames)), [len(f["group"]) for f in frames])


def _stored_prediction(frame: dict[str, list], classes: list[str], patients: pd.Index, dummy: bool,
                       path: Path, part: np.ndarray | None = None, folds: tuple[int, ...] = (0,)) -> StoredPrediction:
    y = _codes(frame["y_true"], classes)
    patient = patients.get_indexer(np.array(frame["group"], str))
    if (y < 0).any() or (patient < 0).any():
        raise DataError(f"{path}: a true label outside {classes} or a patient outside this split's test part")
    part = np.zeros(len(y), int) if part is None else part
    columns = {name: np.array(values, str) for name, values in frame.items()
               if name not in PREDICTION_COLUMNS and not name.startswith("proba_")}
    if dummy:
        first = [int(np.argmax(part == p)) for p in range(len(folds))]  # a dummy's rows all carry its prior
        prior = np.array([[frame[f"proba_{c}"][i] for c in classes] for i in first], float)
        return StoredPrediction(patient, y, None, prior / prior.sum(1, keepdims=True), columns, part, folds)
    pred = _codes(frame["y_pred"], classes)
    if (pred < 0).any():
        raise DataError(f"{path}: a predicted label outside {classes}")
    return StoredPrediction(patient, y, pred, None, columns, part, folds)


def _codes(labels: list, classes: list[str]) -> np.ndarray:
    """Class index of every label (as stored: text), -1 for a label outside ``classes``."""
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup.get(str(label), -1) for label in labels], int)


def _same_test_part(a: StoredPrediction, b: StoredPrediction, k: int) -> bool:
    return len(a.y) == len(b.y) and np.array_equal(np.bincount(a.patient * k + a.y), np.bincount(b.patient * k + b.y))


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


# ---------------------------------------------------------------- intervals and tests


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval and one-sided p-values (H0: value ≤ 0, H0: value ≥ 0)."""

    value: float
    low: float
    high: float
    p_greater: float
    p_less: float


def estimate(point: float, draws: np.ndarray, n_patients: int, alpha: float = ALPHA,
             bounds: tuple[float, float] | None = None, inflation: float = 1.0) -> Estimate:
    """Interval and p-values of ``point`` from its bootstrap draws (see the module docstring).

    The scale is the bootstrap SE × √(n / (n − 1)) (× √inflation under cv); the reference is Student t
    with n − 1 degrees of freedom. A metric's interval is clipped to its range (``bounds``); a
    difference's is not.
    """
    finite = draws[np.isfinite(draws)]
    if not np.isfinite(point) or len(finite) < 2 or n_patients < 2:
        return Estimate(point, np.nan, np.nan, np.nan, np.nan)
    df = n_patients - 1
    scale = np.std(finite, ddof=1) * np.sqrt(n_patients / df * inflation)
    half = stdtrit(df, 1 - alpha / 2) * scale  # Student t quantile (scipy.special: no per-call overhead)
    low, high = point - half, point + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    if scale == 0:
        return Estimate(point, low, high, float(point <= 0), float(point >= 0))
    return Estimate(point, float(low), float(high), float(stdtr(df, -point / scale)), float(stdtr(df, point / scale)))


def holm(p_values: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels); NaN entries are left out of the family and stay NaN."""
    p_values = np.asarray(p_values, float)
    adjusted = np.full(len(p_values), np.nan)
    finite = np.isfinite(p_values)
    if finite.any():
        gc.freeze()  # statsmodels' Holm calls gc.collect(): ~0.8 s in a process holding torch, ~0 on a frozen heap
        try:
            adjusted[finite] = multipletests(p_values[finite], alpha=alpha, method="holm")[1]
        finally:
            gc.unfreeze()
    return adjusted


def directional_holm(up: np.ndarray, down: np.ndarray, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Holm over both one-sided hypotheses of every comparison (2m of them).

    Either direction can then be claimed with the family-wise error at ``alpha``, and an adjusted
    p < alpha implies a raw one-sided p < alpha/2, i.e. the 95% interval excludes 0.
    """
    adjusted = holm(np.concatenate([up, down]), alpha)
    return adjusted[:len(up)], adjusted[len(up):]


def _direction(up_holm: float, down_holm: float, alpha: float, words: tuple[str, str, str]) -> str | float:
    if np.isnan(up_holm):
        return np.nan
    return words[0] if up_holm < alpha else words[2] if down_holm < alpha else words[1]


# ---------------------------------------------------------------- the leaderboard's statistics


@dataclass
class LeaderboardStats:
    """Everything the leaderboard prints, from one bootstrap of every task (see the module docstring)."""

    configurations: pd.DataFrame   # one row per configuration (dummies included)
    augmentation: pd.DataFrame     # one row per (augmenter ≠ none, matched 'none') pair
    tasks: pd.DataFrame            # per task: sizes, minimum detectable Δ, warnings
    class_counts: pd.DataFrame     # per task, split and class: training and test images
    variance: pd.DataFrame         # per task: seed, split and test-sampling parts of the variance
    warnings: list[str]
    n_boot: int
    n_models: int                  # model configurations in the verdicts' Holm family


def leaderboard_stats(results: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0,
                      alpha: float = ALPHA) -> LeaderboardStats:
    """Intervals, verdicts, ties, augmentation effects, sizes and variance parts of raw result rows.

    ``results`` are rows from :func:`skinbench.leaderboard.read_results` (or several merged), which
    record the run directory of each row so its stored predictions can be read. The last few answers
    are kept: ``skinbench run`` renders a page, a chart and a table from the same rows, and the
    bootstrap need not run three times (a changed row or predictions folder is a new question).
    """
    key = _question(results, n_boot, seed, alpha)
    if key not in _ANSWERS:
        while len(_ANSWERS) >= 4:
            _ANSWERS.pop(next(iter(_ANSWERS)))
        _ANSWERS[key] = _leaderboard_stats(results, n_boot, seed, alpha)
    return _ANSWERS[key]


_ANSWERS: dict[tuple, LeaderboardStats] = {}


def _question(results: pd.DataFrame, n_boot: int, seed: int, alpha: float) -> tuple:
    """What :func:`leaderboard_stats` answers depends on: the rows and the state of their predictions folders."""
    columns = [c for c in ("cell_id", "seed", "split", "fold", "status", "run_dir", "data_fingerprint", "head")
               if c in results]
    rows = int(pd.util.hash_pandas_object(results[columns].astype(str), index=False).sum()) if len(results) else 0
    folders = []
    for run_dir in sorted(set(results.get("run_dir", pd.Series(dtype=str)).astype(str))):
        predictions = Path(run_dir) / "predictions"
        folders.append((run_dir, predictions.stat().st_mtime_ns if predictions.exists() else 0))
    return rows, len(results), tuple(folders), n_boot, seed, alpha


def _leaderboard_stats(results: pd.DataFrame, n_boot: int, seed: int, alpha: float) -> LeaderboardStats:
    predictions = load_predictions(results)
    boots = {}
    for key, task in predictions.items():
        if task.files:
            boots[key] = bootstrap_task(task, task_plan(task, n_boot, seed), leaderboard_metrics(task.ordinal), seed)
    configurations = _configuration_frame(aggregate(results), boots, alpha)
    n_models = int(configurations["verdict"].notna().sum())
    tasks, counts, warned = _task_frame(results, predictions, boots, configurations, alpha, n_models)
    return LeaderboardStats(
        configurations=configurations,
        augmentation=_augmentation_frame(configurations, boots, alpha),
        tasks=tasks, class_counts=counts, variance=_variance_frame(configurations, boots, results),
        warnings=warned, n_boot=n_boot, n_models=n_models,
    )


def configuration_stats(results: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """One row per configuration: ``<metric>_mean`` / ``_ci_low`` / ``_ci_high`` for every label metric,
    ``delta_vs_stratified`` and ``delta_vs_best_dummy`` with intervals, their one-sided p-values
    (``p_vs_…``, H0: Δ ≤ 0) Holm-corrected (``p_vs_…_holm``), ``verdict`` and ``tied_with_best``, plus the
    descriptive seed columns of :func:`aggregate`. Dummy rows carry their own scores and no verdict.

    The verdict is ``above_chance`` when Δ vs the *best* dummy (most-frequent, uniform or stratified,
    whichever scores highest) is above 0 and ``below_chance`` when Δ vs stratified is below 0, Holm over
    both directions of every model configuration: a constant predictor equals the most-frequent dummy,
    so it is never above chance, however skewed the test labels."""
    return leaderboard_stats(results, n_boot, seed).configurations


def augmentation_effects(results: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Per model configuration with an augmenter: paired macro-F1 gain over the same backbone, head and
    task with augmenter ``none``, its interval, Holm-corrected p-values and ``effect``."""
    return leaderboard_stats(results, n_boot, seed).augmentation


def task_summary(results: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Per task: test patients and images, splits, seeds, runs, minimum detectable Δ and warnings."""
    return leaderboard_stats(results, n_boot, seed).tasks


def variance_components(results: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Per task: how the variance of one evaluation's macro-F1 divides into seed, split and test sampling."""
    return leaderboard_stats(results, n_boot, seed).variance


def _configuration_frame(cells: pd.DataFrame, boots: dict, alpha: float) -> pd.DataFrame:
    cells = cells.copy()
    draws = [boots.get((d, t), {}).get(c) for d, t, c in zip(cells["dataset"], cells["task"], cells["cell_id"])]
    for metric in LABEL_METRICS:
        estimates = [d.estimate(metric, alpha) if d is not None else None for d in draws]
        cells[f"{metric}_mean"] = [e.value if e else m for e, m in zip(estimates, cells[f"{metric}_mean"])]
        cells[f"{metric}_ci_low"] = [e.low if e else np.nan for e in estimates]
        cells[f"{metric}_ci_high"] = [e.high if e else np.nan for e in estimates]
    baselines = {key: _baselines(cells, key, task_draws) for key, task_draws in boots.items()}
    rows = []
    for key, head, cell in zip(zip(cells["dataset"], cells["task"]), cells["head"], draws):
        row = {}
        if baselines.get(key) is not None:
            stratified, best_name, best = baselines[key]
            row.update(stratified_macro_f1=stratified.point["macro_f1"], best_dummy=best_name,
                       best_dummy_macro_f1=best.point["macro_f1"])
            if cell is not None and head not in DUMMY_HEADS:
                for name, baseline in (("stratified", stratified), ("best_dummy", best)):
                    delta = cell.minus(baseline, alpha=alpha)
                    row.update({f"delta_vs_{name}": delta.value, f"delta_vs_{name}_ci_low": delta.low,
                                f"delta_vs_{name}_ci_high": delta.high})
                    row.update({f"p_vs_{name}": delta.p_greater, f"p_below_{name}": delta.p_less})
        rows.append(row)
    columns = ["stratified_macro_f1", "best_dummy", "best_dummy_macro_f1", "delta_vs_stratified",
               "delta_vs_stratified_ci_low", "delta_vs_stratified_ci_high", "delta_vs_best_dummy",
               "delta_vs_best_dummy_ci_low", "delta_vs_best_dummy_ci_high", "p_vs_stratified", "p_below_stratified",
               "p_vs_best_dummy", "p_below_best_dummy"]
    tests = pd.DataFrame(rows, columns=columns, index=cells.index)
    cells = pd.concat([cells.drop(columns=[c for c in columns if c in cells]), tests], axis=1)
    cells["p_vs_stratified_holm"], cells["p_below_stratified_holm"] = directional_holm(
        cells["p_vs_stratified"].to_numpy(float), cells["p_below_stratified"].to_numpy(float), alpha)
    up, down = directional_holm(cells["p_vs_best_dummy"].to_numpy(float), cells["p_below_stratified"].to_numpy(float),
                                alpha)
    cells["p_vs_best_dummy_holm"], cells["p_below_chance_holm"] = up, down
    cells["verdict"] = [_direction(u, d, alpha, VERDICTS) for u, d in zip(up, down)]
    return _with_ties(cells, boots, alpha)


def _baselines(cells: pd.DataFrame, key: tuple[str, str], task_draws: dict[str, CellDraws]):
    """(stratified draws, best dummy's head, best dummy draws) of one task, or None without dummies.

    The best dummy is chosen on the point estimates, then compared on every resample: taking the
    maximum per resample would bias the baseline upwards.
    """
    dummies = cells[(cells["dataset"] == key[0]) & (cells["task"] == key[1]) & cells["head"].isin(DUMMY_HEADS)
                    & cells["cell_id"].isin(list(task_draws))]
    if STRATIFIED not in set(dummies["head"]):
        return None
    by_head = dict(zip(dummies["head"], dummies["cell_id"]))
    best = max(by_head, key=lambda head: task_draws[by_head[head]].point["macro_f1"])
    return task_draws[by_head[STRATIFIED]], best, task_draws[by_head[best]]


def _with_ties(cells: pd.DataFrame, boots: dict, alpha: float) -> pd.DataFrame:
    """``tied_with_best``: not distinguishable from the task's best model configuration.

    Paired one-sided test of best − other (H0: ≤ 0) for every other configuration of the task,
    Holm-corrected within the task; the best is tied with itself.
    """
    cells["p_vs_best_holm"] = np.nan
    cells["tied_with_best"] = pd.Series([None] * len(cells), index=cells.index, dtype=object)
    models = cells[cells["verdict"].notna()]
    for key, group in models.groupby(["dataset", "task"], sort=False):
        task_draws = boots[key]
        best = group["macro_f1_mean"].idxmax()
        others = [i for i in group.index if i != best]
        leader = task_draws[cells.at[best, "cell_id"]]
        adjusted = holm(np.array([leader.minus(task_draws[cells.at[i, "cell_id"]], alpha=alpha).p_greater
                                  for i in others]), alpha)
        cells.loc[others, "p_vs_best_holm"] = adjusted
        for index, p in zip(others, adjusted):
            cells.at[index, "tied_with_best"] = bool(p >= alpha)
        cells.at[best, "tied_with_best"] = True
    return cells


def _augmentation_frame(configurations: pd.DataFrame, boots: dict, alpha: float) -> pd.DataFrame:
    """Each augmenter against ``none`` with the same dataset, task, backbone and head, paired."""
    models = configurations[configurations["verdict"].notna()]
    keys = ["dataset", "task", "backbone_label", "head_label"]
    real = models[models["augmenter"] == REAL_ONLY]
    pairs = models[models["augmenter"] != REAL_ONLY].merge(real[keys + ["cell_id", "macro_f1_mean"]], on=keys,
                                                            suffixes=("", "_real"))
    columns = [*keys, "augmenter_label", "cell_id", "cell_id_real", "macro_f1_mean", "reference_macro_f1",
               "gain", "gain_ci_low", "gain_ci_high", "p_helps", "p_hurts"]
    rows = []
    for pair in pairs.itertuples(index=False):
        task_draws = boots[(pair.dataset, pair.task)]
        gain = task_draws[pair.cell_id].minus(task_draws[pair.cell_id_real], alpha=alpha)
        rows.append([*(getattr(pair, k) for k in (*keys, "augmenter_label", "cell_id", "cell_id_real")),
                     pair.macro_f1_mean, pair.macro_f1_mean_real, gain.value, gain.low, gain.high,
                     gain.p_greater, gain.p_less])
    frame = pd.DataFrame(rows, columns=columns)
    up, down = directional_holm(frame["p_helps"].to_numpy(float), frame["p_hurts"].to_numpy(float), alpha)
    frame["p_helps_holm"], frame["p_hurts_holm"] = up, down
    frame["effect"] = [_direction(u, d, alpha, EFFECTS) for u, d in zip(up, down)]
    return frame


# ---------------------------------------------------------------- sizes, power, warnings


def _task_frame(results: pd.DataFrame, predictions: dict, boots: dict, configurations: pd.DataFrame,
                alpha: float, n_models: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per task: sizes and the minimum detectable Δ; per (task, split, class): image counts; warnings.

    Training counts are the stratified dummy's stored prior × its ``n_train`` (the dummy saw the
    whole training part of the real images: fit and validation, no synthetic images).
    """
    rows, counts, warned = [], [], []
    for (dataset, task), group in results.groupby(["dataset", "task"], sort=False):
        loaded = predictions.get((dataset, task))
        ok = group[group["status"] == "ok"]
        models = configurations[(configurations["dataset"] == dataset) & (configurations["task"] == task)
                                & configurations["verdict"].notna()]
        scale, n_patients = _delta_scale(models, boots.get((dataset, task), {}), ok)
        where = f"{dataset}/{task}"
        task_counts = _class_counts(loaded, ok) if loaded is not None else []
        counts += [{"dataset": dataset, "task": task, **c} for c in task_counts]
        for c in task_counts:
            if c["n_train"] == 0:
                warned.append(f"{where}: class '{c['class']}' has no training image (split {c['split']}); "
                              "no head can learn it from real images")
            if c["n_test"] < MIN_TEST_IMAGES:
                warned.append(f"{where}: class '{c['class']}' has {c['n_test']} test image(s) (split {c['split']}); "
                              f"fewer than {MIN_TEST_IMAGES} make its F1 and the task's macro-F1 volatile")
        if loaded is not None and loaded.missing:
            warned.append(f"{where}: {len(loaded.missing)} successful run(s) have no stored predictions "
                          f"(e.g. {loaded.missing[0]}); their configurations are shown without intervals or verdict")
        patients = [len(p) for p in loaded.patients.values()] if loaded is not None else []
        tested = ok.groupby(["cell_id", "seed", "split"])["n_test"].sum(min_count=1)  # under cv: over the folds
        rows.append({
            "dataset": dataset, "task": task, "n_classes": _first(ok["n_classes"]),
            "classes": list(loaded.classes) if loaded is not None else [],
            "n_splits": int(group["split"].nunique()), "n_folds": int(group["fold"].nunique()),
            "n_seeds": int(group["seed"].nunique()),
            "runs_ok": len(ok), "runs_failed": len(group) - len(ok),
            "test_patients_min": min(patients, default=np.nan), "test_patients_max": max(patients, default=np.nan),
            "test_images_min": _first(tested, min), "test_images_max": _first(tested, max),
            "n_synthetic_min": _first(ok["n_synthetic"], min), "n_synthetic_max": _first(ok["n_synthetic"], max),
            "delta_scale": scale,
            "mde_delta": minimum_detectable_delta(scale, n_patients, alpha),
            "mde_delta_holm": minimum_detectable_delta(scale, n_patients, alpha, n_tests=2 * max(n_models, 1)),
            "mde_delta_holm_holdout": _holdout_mde(loaded, scale, n_patients, alpha, 2 * max(n_models, 1)),
        })
    return pd.DataFrame(rows), pd.DataFrame(counts, columns=["dataset", "task", "split", "class", "n_train", "n_test"]), warned


def _holdout_mde(loaded: TaskPredictions | None, scale: float, n_patients: int, alpha: float, n_tests: int,
                 test_fraction: float = 0.2) -> float:
    """Under cv: the minimum detectable Δ (Holm's first step) that a holdout of ``test_fraction`` of the same
    patients would have, projected from this run (the bootstrap SE of a patient mean grows as √(n / n_test);
    the cv variance inflation and the n − 1 expansion are replaced by the holdout's). NaN under holdout."""
    if loaded is None or not loaded.cv or not np.isfinite(scale) or n_patients < 2:
        return np.nan
    n_test = max(2, int(np.ceil(test_fraction * n_patients)))
    raw = scale / np.sqrt(n_patients / (n_patients - 1) * loaded.variance_inflation())
    holdout_scale = raw * np.sqrt(n_patients / n_test) * np.sqrt(n_test / (n_test - 1))
    return minimum_detectable_delta(holdout_scale, n_test, alpha, n_tests=n_tests)


def minimum_detectable_delta(scale: float, n_patients: int, alpha: float = ALPHA, power: float = POWER,
                             n_tests: int = 2) -> float:
    """Smallest true Δ that :func:`estimate`'s one-sided test at level alpha / n_tests detects with ``power``.

    ``scale`` is the expanded bootstrap SE of Δ. ``n_tests=2`` is one comparison in the verdicts'
    two-direction family (Holm's last step); ``2m`` is Holm's first step over m model
    configurations, the bar the best of them faces.
    """
    if not np.isfinite(scale) or n_patients < 2:
        return np.nan
    df = n_patients - 1
    return float((stdtrit(df, 1 - alpha / n_tests) + stdtrit(df, power)) * scale)


def _delta_scale(models: pd.DataFrame, task_draws: dict, ok: pd.DataFrame) -> tuple[float, int]:
    """Median over the task's model configurations of the expanded bootstrap SE of Δ vs stratified."""
    stratified = ok.loc[ok["head"] == STRATIFIED, "cell_id"]
    if stratified.empty or stratified.iloc[0] not in task_draws:
        return np.nan, 0
    base = task_draws[stratified.iloc[0]]
    cells = [task_draws[c] for c in models["cell_id"] if c in task_draws]
    if not cells or base.n_patients < 2:
        return np.nan, 0
    expansion = np.sqrt(base.n_patients / (base.n_patients - 1) * base.inflation)
    spreads = [np.nanstd(c.draws["macro_f1"] - base.draws["macro_f1"], ddof=1) * expansion for c in cells]
    return float(np.median(spreads)), base.n_patients


def _class_counts(loaded: TaskPredictions, ok: pd.DataFrame) -> list[dict]:
    """Per split and class: test images (all patients under cv) and training images (per fold under cv)."""
    stratified = ok[ok["head"] == STRATIFIED].assign(fold=lambda d: d.get("fold", 0))
    out = []
    for split, files in loaded.files.items():
        reference = next(iter(files.values()))
        test = np.bincount(reference.y, minlength=len(loaded.classes))
        train = np.full(len(loaded.classes), -1)
        rows = stratified[stratified["split"] == split]
        for (cell_id, seed), runs in rows.groupby(["cell_id", "seed"], sort=False):
            stored = files.get((cell_id, int(seed)))
            if stored is not None and runs["n_train"].notna().all():  # under cv: the mean over the outer folds
                per_fold = [stored.prior[stored.folds.index(int(r.fold))] * r.n_train for r in runs.itertuples()]
                train = np.rint(np.mean(per_fold, axis=0)).astype(int)
                break
        out += [{"split": split, "class": c, "n_train": int(n) if n >= 0 else np.nan, "n_test": int(t)}
                for c, n, t in zip(loaded.classes, train, test)]
    return out


def _first(values: pd.Series, reduce: Callable | None = None) -> float:
    """The first (or ``reduce``d) number of a column as an int, NaN when it has none."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return np.nan
    return int(reduce(values) if reduce else values.iloc[0])


def _variance_frame(configurations: pd.DataFrame, boots: dict, results: pd.DataFrame) -> pd.DataFrame:
    """Per task, the parts of the variance of one (split, seed) evaluation's macro-F1, averaged over its
    model configurations (method of moments):

    - test sampling: bootstrap variance over test patients of one evaluation;
    - seed: variance between seeds on the same split (needs ≥ 2 seeds);
    - split: variance between split means beyond what test sampling and seeds explain (needs ≥ 2
      splits, i.e. ``protocol.repeats`` or ``cv_repeats``; approximate, since splits may share test
      patients, and under cv they share all of them).

    Under cv, ``sd_fold`` is the standard deviation of the stored per-fold macro-F1 between the outer
    folds of one (configuration, seed, repeat): descriptive, and it holds each fold's own test
    sampling, so it is not one of the shares.
    """
    rows = []
    models = configurations[configurations["verdict"].notna()]
    fold_sd = _fold_sd(results[results["cell_id"].isin(models["cell_id"])])
    for (dataset, task), group in models.groupby(["dataset", "task"], sort=False):
        parts = np.array([_variance_parts(boots[(dataset, task)][c]) for c in group["cell_id"]])
        seed_var, split_var, test_var = (_nanmean(parts[:, i]) for i in range(3))
        total = np.nansum([seed_var, split_var, test_var]) or np.nan  # no variance at all: no shares
        runs = boots[(dataset, task)][group["cell_id"].iloc[0]].evaluations
        rows.append({"dataset": dataset, "task": task, "n_splits": len({s for s, _ in runs}),
                     "n_seeds": len({r for _, r in runs}),
                     "sd_seed": np.sqrt(seed_var), "sd_split": np.sqrt(split_var), "sd_test": np.sqrt(test_var),
                     "share_seed": seed_var / total, "share_split": split_var / total, "share_test": test_var / total,
                     "sd_fold": fold_sd.get((dataset, task), np.nan)})
    return pd.DataFrame(rows, columns=["dataset", "task", "n_splits", "n_seeds", "sd_seed", "sd_split", "sd_test",
                                       "share_seed", "share_split", "share_test", "sd_fold"])


def _fold_sd(rows: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Per task: √(mean over (configuration, seed, split) of the variance of macro-F1 between outer folds)."""
    ok = rows[(rows["status"] == "ok") & (rows.groupby(["cell_id", "seed", "split"])["fold"].transform("nunique") > 1)]
    if ok.empty:
        return {}
    per_run = ok.groupby(["dataset", "task", "cell_id", "seed", "split"])["macro_f1"].var(ddof=1)
    return {key: float(np.sqrt(v)) for key, v in per_run.groupby(level=["dataset", "task"]).mean().items()}


def _variance_parts(cell: CellDraws, metric: str = "macro_f1") -> tuple[float, float, float]:
    by_split: dict[int, list] = {}
    for (split, _), (point, draws) in cell.evaluations.items():
        by_split.setdefault(split, []).append((point[metric], draws[metric]))
    test = _nanmean(np.array([np.nanvar(d, ddof=1) for runs in by_split.values() for _, d in runs]))
    seeds = [np.var([p for p, _ in runs], ddof=1) for runs in by_split.values() if len(runs) > 1]
    seed = _nanmean(np.array(seeds)) if seeds else np.nan
    if len(by_split) < 2:
        return seed, np.nan, test
    split_means = [np.mean([p for p, _ in runs]) for runs in by_split.values()]
    mean_test = np.mean([np.nanvar(np.mean([d for _, d in runs], axis=0), ddof=1) for runs in by_split.values()])
    n_seeds = np.mean([len(runs) for runs in by_split.values()])
    explained = mean_test + (0 if np.isnan(seed) else seed / n_seeds)
    return seed, max(0.0, float(np.var(split_means, ddof=1) - explained)), test


# ---------------------------------------------------------------- subgroups


def subgroup_stats(results: pd.DataFrame, column: str, n_boot: int = N_BOOT, seed: int = 0,
                   min_n: int = MIN_SUBGROUP_N, alpha: float = ALPHA) -> pd.DataFrame:
    """Macro-F1 per subgroup (a stored column such as skin_tone) of every model configuration.

    One row per (configuration, subgroup value): test images and patients of the subgroup (the
    smallest over splits), ``enough`` (≥ ``min_n`` images), macro-F1 over *all* the task's classes
    with its interval, the subgroup's chance level (``chance_macro_f1``: its best dummy, ``chance_dummy``)
    and the paired Δ vs that best dummy and vs the stratified dummy, with intervals; per configuration, the worst-group gap (best − worst subgroup among
    those with enough images, chosen on the point estimates) with its interval. Resamples are the
    leaderboard's: the same plan per task, so subgroups and gaps are paired.
    """
    predictions = load_predictions(results)
    cells = results.drop_duplicates("cell_id").set_index("cell_id")
    rows = []
    for loaded in predictions.values():
        values = _subgroup_values(loaded, column)
        if not values:
            continue
        plan = task_plan(loaded, n_boot, seed)
        per_value = {v: bootstrap_task(loaded, plan, macro_f1_over_classes, seed, _selector(column, v)) for v in values}
        sizes = {v: _subgroup_size(loaded, column, v) for v in values}
        dummies = {str(cells.at[c, "head"]): c for c in per_value[values[0]] if cells.at[c, "head"] in DUMMY_HEADS}
        for cell_id in per_value[values[0]]:
            if cells.at[cell_id, "head"] in DUMMY_HEADS:
                continue
            rows += _subgroup_rows(cells.loc[cell_id], cell_id, column, per_value, sizes, dummies, min_n, alpha)
    if not rows:
        raise SkinbenchError(f"no stored prediction has a '{column}' column; the dataset must provide it "
                             f"(region, skin_tone, sex or age)")
    return pd.DataFrame(rows)


def _subgroup_values(loaded: TaskPredictions, column: str) -> list[str]:
    stored = [f.columns[column] for files in loaded.files.values() for f in files.values() if column in f.columns]
    values = set(np.concatenate(stored)) if stored else set()
    return sorted(values - {"", "nan", "None"})


def _selector(column: str, value: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    def select(columns: dict[str, np.ndarray]) -> np.ndarray:
        return columns[column] == value if column in columns else np.zeros(len(columns["image"]), bool)
    return select


def _subgroup_size(loaded: TaskPredictions, column: str, value: str) -> tuple[int, int]:
    """(images, patients) of the subgroup: the smallest over splits."""
    sizes = []
    for files in loaded.files.values():
        stored = next(iter(files.values()))
        mask = _selector(column, value)(stored.columns)
        sizes.append((int(mask.sum()), len(np.unique(stored.patient[mask]))))
    return min(sizes)


def _subgroup_rows(cell: pd.Series, cell_id: str, column: str, per_value: dict, sizes: dict, dummies: dict[str, str],
                   min_n: int, alpha: float) -> list[dict]:
    scores = {v: draws[cell_id] for v, draws in per_value.items()}
    enough = [v for v in scores if sizes[v][0] >= min_n and np.isfinite(scores[v].point["macro_f1"])]
    gap, best, worst = Estimate(np.nan, np.nan, np.nan, np.nan, np.nan), None, None
    if len(enough) >= 2:
        best = max(enough, key=lambda v: scores[v].point["macro_f1"])
        worst = min(enough, key=lambda v: scores[v].point["macro_f1"])
        gap = scores[best].minus(scores[worst], alpha=alpha)
    rows = []
    none = Estimate(np.nan, np.nan, np.nan, np.nan, np.nan)
    for value, score in scores.items():
        f1 = score.estimate("macro_f1", alpha)
        baselines = {head: per_value[value][c] for head, c in dummies.items()}
        # the subgroup's own best dummy, chosen on its point estimates: in a subgroup holding only the majority
        # class the most-frequent dummy is perfect there, and a constant predictor must not beat chance
        chance = max(baselines, key=lambda h: np.nan_to_num(baselines[h].point["macro_f1"], nan=-1), default=None)
        stratified = baselines.get(STRATIFIED)
        delta = score.minus(stratified, alpha=alpha) if stratified is not None else none
        above = score.minus(baselines[chance], alpha=alpha) if chance is not None else none
        rows.append({
            **{k: cell[k] for k in CELL_KEYS if k != "cell_id"}, "cell_id": cell_id, column: value,
            "n_images": sizes[value][0], "n_patients": sizes[value][1], "enough": sizes[value][0] >= min_n,
            "macro_f1_mean": f1.value, "macro_f1_ci_low": f1.low, "macro_f1_ci_high": f1.high,
            "chance_dummy": chance,
            "chance_macro_f1": baselines[chance].point["macro_f1"] if chance is not None else np.nan,
            "stratified_macro_f1": stratified.point["macro_f1"] if stratified is not None else np.nan,
            "delta_vs_best_dummy": above.value, "delta_vs_best_dummy_ci_low": above.low,
            "delta_vs_best_dummy_ci_high": above.high,
            "delta_vs_stratified": delta.value, "delta_vs_stratified_ci_low": delta.low,
            "delta_vs_stratified_ci_high": delta.high,
            "worst_group_gap": gap.value, "worst_group_gap_ci_low": gap.low, "worst_group_gap_ci_high": gap.high,
            "best_group": best, "worst_group": worst,
        })
    return rows
