"""How stable a task's ranking is: every configuration's rank on each of the task's shared resamples.

Why: a leaderboard is read as a ranking, and rankings of small test sets are fragile (Maier-Hein et
al., "Why rankings of biomedical image analysis competitions should be interpreted with care", Nat.
Commun. 2018). challengeR (Wiesenfarth et al., "Methods and open-source toolkit for analyzing and
visualizing challenge results", Sci. Rep. 2021) answers with the bootstrap distribution of each
rank; this module does the same on the patient resamples the task's intervals already use
(:func:`~skinbench.leaderboard.stats.task_plan`), so ranks, intervals and verdicts rest on one set of
draws and no new resamples are drawn.

- A configuration's rank on a resample is 1 + the number of model configurations of the task that score
  a higher macro-F1 on it (ties share the best rank, challengeR's ``ties.method = "min"``). Its median and
  2.5% / 97.5% percentiles over the resamples are ``rank_median``, ``rank_ci_low`` and ``rank_ci_high``; the
  reported ``rank`` is the same rule applied to the reported (point) macro-F1s.
- Kendall's τ (scipy) between each resample's ranking and the reported one says how much the whole
  ranking moves: 1 on every resample is a ranking the test patients cannot reorder.
- The consensus ranking of a dataset averages each configuration's rank over the dataset's tasks (only the
  configurations ranked in every task), per resample, so its mean rank gets a percentile interval too. The
  tasks' plans are drawn independently (each is seeded by its task's name), so resample b of two tasks are
  independent draws although the tasks share test patients: the consensus interval ignores that correlation
  and is narrower than it should be when tasks err on the same patients.

Percentile intervals, not the t intervals of :func:`~skinbench.leaderboard.stats.estimate`: ranks are
bounded integers. How honest they are is measured by ``benchmarks/rank_coverage.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, rankdata
from skinbench.vocabulary import DUMMY_HEADS

from .bootstrap import CellDraws
from .inference import ALPHA

RANK_COLUMNS = ("rank", "rank_median", "rank_ci_low", "rank_ci_high")
"""The columns every configuration row gains (NaN for dummies and configurations without draws)."""
WIDE_RANK = 2
"""A rank interval spanning at least this many ranks (high − low + 1) is one the test patients can reorder."""


@dataclass
class TaskRanks:
    """The ranks of one task's model configurations: as reported, and on every resample."""

    cells: list[str]
    reported: np.ndarray    # (k,) rank of each cell on the point estimates
    resampled: np.ndarray   # (n_boot, k) rank of each cell on each resample

    def frequencies(self) -> np.ndarray:
        """(k, k): share of the resamples on which cell i has rank r + 1 (the blob plot's areas)."""
        k = len(self.cells)
        return np.stack([np.bincount(self.resampled[:, i].astype(int) - 1, minlength=k)[:k]
                         for i in range(k)]) / len(self.resampled)

    def kendall_taus(self) -> np.ndarray:
        """Kendall's τ between each resample's ranking and the reported one (NaN with fewer than two cells)."""
        if len(self.cells) < 2:
            return np.full(len(self.resampled), np.nan)
        return np.array([kendalltau(self.reported, row).statistic for row in self.resampled])


@dataclass
class RankStats:
    """Rank stability of a leaderboard: per configuration, per task, per dataset, and the blob plots' data."""

    configurations: pd.DataFrame  # cell_id + :data:`RANK_COLUMNS`
    tasks: pd.DataFrame           # per task: ranked configurations, Kendall's τ with its interval, wide intervals
    consensus: pd.DataFrame       # per dataset and configuration: mean rank over tasks with its interval
    frequencies: pd.DataFrame     # per task, configuration and rank: the share of resamples


def task_ranks(draws: dict[str, CellDraws], cells: list[str], metric: str = "macro_f1") -> TaskRanks:
    """Ranks of ``cells`` (1 = best) on the reported scores and on each of the task's shared resamples."""
    point = np.array([draws[c].point[metric] for c in cells], float)
    values = np.stack([draws[c].draws[metric] for c in cells], axis=1)
    worst = -np.inf  # a score that cannot be computed ranks last
    reported = rankdata(-np.where(np.isfinite(point), point, worst), method="min")
    resampled = rankdata(-np.where(np.isfinite(values), values, worst), axis=1, method="min")
    return TaskRanks(list(cells), reported.astype(float), resampled.astype(float))


def rank_stats(configurations: pd.DataFrame, boots: dict[tuple[str, str], dict[str, CellDraws]],
               alpha: float = ALPHA) -> RankStats:
    """Ranks of every task's model configurations that have draws, on the task's shared resamples."""
    models = configurations[~configurations["head"].isin(DUMMY_HEADS)]
    per_cell, per_task, blobs, by_task = [], [], [], {}
    for (dataset, task), group in models.groupby(["dataset", "task"], sort=False):
        task_draws = boots.get((dataset, task), {})
        cells = [c for c in group["cell_id"] if c in task_draws]
        if not cells:
            continue
        ranks = task_ranks(task_draws, cells)
        by_task[(dataset, task)] = (ranks, group.set_index("cell_id").loc[cells])
        low, median, high = np.percentile(ranks.resampled, [100 * alpha / 2, 50, 100 * (1 - alpha / 2)], axis=0,
                                          method="inverted_cdf")
        per_cell += [{"cell_id": c, "rank": r, "rank_median": m, "rank_ci_low": lo, "rank_ci_high": hi}
                     for c, r, m, lo, hi in zip(cells, ranks.reported, median, low, high)]
        taus = ranks.kendall_taus()
        tau_low, tau, tau_high = _percentiles(taus, alpha)
        per_task.append({"dataset": dataset, "task": task, "n_ranked": len(cells), "kendall_tau": tau,
                         "kendall_tau_ci_low": tau_low, "kendall_tau_ci_high": tau_high,
                         "n_wide_rank_intervals": int((high - low + 1 >= WIDE_RANK).sum())})
        shares = ranks.frequencies()
        blobs += [{"dataset": dataset, "task": task, "cell_id": c, "rank": r + 1, "share": shares[i, r]}
                  for i, c in enumerate(cells) for r in range(len(cells)) if shares[i, r] > 0]
    return RankStats(
        configurations=pd.DataFrame(per_cell, columns=["cell_id", *RANK_COLUMNS]),
        tasks=pd.DataFrame(per_task, columns=["dataset", "task", "n_ranked", "kendall_tau", "kendall_tau_ci_low",
                                              "kendall_tau_ci_high", "n_wide_rank_intervals"]),
        consensus=_consensus(by_task, alpha),
        frequencies=pd.DataFrame(blobs, columns=["dataset", "task", "cell_id", "rank", "share"]),
    )


CONFIGURATION = ["backbone_label", "augmenter_label", "head_label"]


def _consensus(by_task: dict, alpha: float) -> pd.DataFrame:
    """Per dataset: mean rank over its tasks of each configuration ranked in all of them, with an interval."""
    columns = ["dataset", *CONFIGURATION, "n_tasks", "mean_rank", "mean_rank_ci_low", "mean_rank_ci_high",
               "consensus_rank"]
    rows = []
    for dataset in dict.fromkeys(d for d, _ in by_task):
        tasks = [value for (d, _), value in by_task.items() if d == dataset]
        keyed = [{tuple(row[k] for k in CONFIGURATION): i for i, (_, row) in enumerate(cells.iterrows())}
                 for _, cells in tasks]
        shared = [key for key in keyed[0] if all(key in k for k in keyed[1:])]
        if not shared:
            continue
        reported = np.mean([[ranks.reported[k[key]] for key in shared] for (ranks, _), k in zip(tasks, keyed)], axis=0)
        n_boot = min(len(ranks.resampled) for ranks, _ in tasks)
        resampled = np.mean([ranks.resampled[:n_boot, [k[key] for key in shared]]
                             for (ranks, _), k in zip(tasks, keyed)], axis=0)
        low, high = np.percentile(resampled, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0, method="inverted_cdf")
        consensus = rankdata(reported, method="min")
        rows += [{"dataset": dataset, **dict(zip(CONFIGURATION, shared[i])), "n_tasks": len(tasks),
                  "mean_rank": reported[i], "mean_rank_ci_low": low[i], "mean_rank_ci_high": high[i],
                  "consensus_rank": int(consensus[i])} for i in np.argsort(reported, kind="stable")]
    return pd.DataFrame(rows, columns=columns)


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.nan, np.nan, np.nan
    low, median, high = np.percentile(finite, [100 * alpha / 2, 50, 100 * (1 - alpha / 2)])
    return float(low), float(median), float(high)
