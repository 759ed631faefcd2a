"""The leaderboard's rank-stability tables: how much each task's ranking moves, and the dataset's consensus."""
from __future__ import annotations

import pandas as pd
from skinbench.vocabulary import MISSING, format_interval, format_rank

from .layout import Table
from .stats import LeaderboardStats
from .stats.ranks import WIDE_RANK


def rank_stability_table(stats: LeaderboardStats, dataset: str, digits: int) -> Table | None:
    """Per task: configurations ranked, Kendall's τ of the resampled rankings, and how many ranks are unsure."""
    if stats.ranks is None or stats.ranks.tasks.empty:
        return None
    tasks = stats.ranks.tasks[stats.ranks.tasks["dataset"] == dataset]
    if tasks.empty:
        return None
    rows = [{"task": t.task, "configurations ranked": t.n_ranked,
             "Kendall's τ [95%]": format_interval(t.kendall_tau, t.kendall_tau_ci_low, t.kendall_tau_ci_high, digits),
             f"rank intervals spanning ≥ {WIDE_RANK} ranks": t.n_wide_rank_intervals} for t in tasks.itertuples(index=False)]
    return Table(
        title="Rank stability",
        caption=f"Each model configuration is ranked (1 = best macro-F1, ties share the best rank) on each of the "
                f"{stats.n_boot} patient resamples that give the intervals. Kendall's τ compares each resample's "
                "ranking with the reported one: median with its 2.5–97.5% percentiles (1: the test patients never "
                f"reorder the configurations). The last column counts the configurations whose rank interval (2.5–97.5% "
                f"percentiles of its rank) holds {WIDE_RANK} or more ranks. Percentiles of the bootstrap, no "
                "correction.",
        frame=pd.DataFrame(rows),
    )


def consensus_table(stats: LeaderboardStats, dataset: str, digits: int) -> Table | None:
    """Mean rank over the dataset's tasks of every configuration ranked in all of them, with its interval."""
    if stats.ranks is None:
        return None
    rows = stats.ranks.consensus[stats.ranks.consensus["dataset"] == dataset]
    if rows.empty or rows["n_tasks"].iloc[0] < 2:
        return None
    frame = pd.DataFrame({
        "consensus rank": rows["consensus_rank"].astype(int).astype(str),
        "backbone": rows["backbone_label"], "augmenter": rows["augmenter_label"], "head": rows["head_label"],
        "mean rank [95%]": [format_interval(m, lo, hi, digits) for m, lo, hi in
                            zip(rows["mean_rank"], rows["mean_rank_ci_low"], rows["mean_rank_ci_high"])],
    })
    return Table(
        title="Consensus ranking over tasks",
        caption=f"Mean of each configuration's rank over the dataset's {int(rows['n_tasks'].iloc[0])} tasks (only "
                "configurations ranked in every task), with the 2.5–97.5% percentiles of that mean over the "
                "resamples; the tasks' resamples are drawn independently, so the interval leaves out the "
                "correlation of tasks that share test patients. Descriptive, no correction.",
        frame=frame,
    )


def rank_text(cell: pd.Series) -> str:
    """``2 [1–4]``: the reported rank and its 95% bootstrap rank interval."""
    if "rank" not in cell:
        return MISSING
    return format_rank(cell["rank"], cell.get("rank_ci_low"), cell.get("rank_ci_high"))
