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

The package follows the data: :mod:`.predictions` reads what was stored, :mod:`.bootstrap` resamples
patients and scores every configuration, :mod:`.inference` turns draws into intervals, p-values and
Holm-corrected claims, :mod:`.frames` assembles the leaderboard's tables, :mod:`.variance` the parts of the variance,
:mod:`.subgroups` the per-subgroup tables, :mod:`.curves` the learning curves and :mod:`.ranks` how stable each
task's ranking is on the same resamples. Everything public is importable from ``skinbench.leaderboard.stats``.
"""
from __future__ import annotations

from .predictions import (
    PREDICTION_COLUMNS,
    StoredPrediction,
    TaskPredictions,
    cv_variance_inflation,
    full_data,
    load_predictions,
    one_scheme,
    predictions_file,
)
from .inference import ALPHA, POWER, Estimate, directional_holm, estimate, holm, minimum_detectable_delta
from .bootstrap import DUMMY_BUDGET, DUMMY_DRAWS, DUMMY_POINT_DRAWS, METRIC_RANGE, N_BOOT, CellDraws, MetricFn, ResamplePlan, bootstrap_task, leaderboard_metrics, macro_f1_over_classes, task_plan
from .frames import CELL_KEYS, LeaderboardStats, aggregate, augmentation_effects, configuration_stats, leaderboard_stats, task_summary, variance_components
from .subgroups import MIN_SUBGROUP_N, subgroup_stats
from .ranks import RANK_COLUMNS, RankStats, TaskRanks, rank_stats, task_ranks
from .curves import CurveStats, learning_curves

__all__ = [
    "ALPHA",
    "CELL_KEYS",
    "CellDraws",
    "CurveStats",
    "DUMMY_BUDGET",
    "DUMMY_DRAWS",
    "DUMMY_POINT_DRAWS",
    "Estimate",
    "LeaderboardStats",
    "METRIC_RANGE",
    "MIN_SUBGROUP_N",
    "MetricFn",
    "N_BOOT",
    "POWER",
    "RANK_COLUMNS",
    "RankStats",
    "TaskRanks",
    "PREDICTION_COLUMNS",
    "ResamplePlan",
    "StoredPrediction",
    "TaskPredictions",
    "aggregate",
    "cv_variance_inflation",
    "augmentation_effects",
    "bootstrap_task",
    "configuration_stats",
    "directional_holm",
    "estimate",
    "full_data",
    "holm",
    "leaderboard_metrics",
    "leaderboard_stats",
    "learning_curves",
    "load_predictions",
    "macro_f1_over_classes",
    "minimum_detectable_delta",
    "one_scheme",
    "predictions_file",
    "rank_stats",
    "subgroup_stats",
    "task_plan",
    "task_ranks",
    "task_summary",
    "variance_components",
]
