"""Rank stability: ranks on the task's shared resamples, their intervals, Kendall's τ and the consensus ranking."""
from __future__ import annotations

import numpy as np
import pytest
from leaderboard_fixtures import patients, write_task
from skinbench.leaderboard import build_report, leaderboard_stats, read_results, render_report
from skinbench.leaderboard.stats import CellDraws, task_ranks

PERFECT, NOISY_1, NOISY_2, POOR = (("perfect", "none", "logreg"), ("noisy-1", "none", "logreg"),
                                   ("noisy-2", "none", "logreg"), ("poor", "none", "logreg"))


def _noisy(y, accuracy, rng):
    return np.where(rng.random(len(y)) > accuracy, 1 - y, y)


def _row(stats, backbone, task="moisture"):
    frame = stats.configurations
    return frame[(frame["backbone_label"] == backbone) & (frame["task"] == task)].iloc[0]


@pytest.fixture(scope="module")
def ranked(tmp_path_factory):
    """40 patients; one configuration always right, two equally noisy (independent errors), one poor; two tasks."""
    run = tmp_path_factory.mktemp("ranks")
    rng = np.random.default_rng(3)
    for task in ("moisture", "oiliness"):
        y = rng.integers(0, 2, 80)
        write_task(run, patients(40), y, {PERFECT: [y, y], NOISY_1: [_noisy(y, 0.75, rng) for _ in range(2)],
                                          NOISY_2: [_noisy(y, 0.75, rng) for _ in range(2)],
                                          POOR: [_noisy(y, 0.3, rng) for _ in range(2)]}, task=task)
    return leaderboard_stats(read_results(run), n_boot=400), run


def test_a_configuration_best_on_every_resample_has_a_point_mass_at_rank_one(ranked):
    stats, _ = ranked
    best = _row(stats, PERFECT[0])
    assert (best["rank"], best["rank_median"], best["rank_ci_low"], best["rank_ci_high"]) == (1, 1, 1, 1)
    shares = stats.ranks.frequencies
    mass = shares[(shares["cell_id"] == best["cell_id"])]
    assert mass[["rank", "share"]].values.tolist() == [[1, 1.0]]


def test_equally_good_configurations_get_overlapping_intervals_and_the_poor_one_is_last(ranked):
    stats, _ = ranked
    one, two, poor = _row(stats, NOISY_1[0]), _row(stats, NOISY_2[0]), _row(stats, POOR[0])
    for row in (one, two):  # both can take either of the two middle places
        assert row["rank_ci_low"] == 2 and row["rank_ci_high"] == 3
    assert (poor["rank_ci_low"], poor["rank_ci_high"]) == (4, 4)
    assert sorted([one["rank"], two["rank"]]) == [2, 3]
    task = stats.ranks.tasks.set_index("task").loc["moisture"]
    assert task["n_ranked"] == 4 and task["n_wide_rank_intervals"] == 2
    assert 0 < task["kendall_tau_ci_low"] < task["kendall_tau_ci_high"] == 1.0  # the middle pair swaps sometimes


def test_dummies_are_not_ranked_and_ranks_use_the_shared_resamples(ranked):
    stats, _ = ranked
    dummies = stats.configurations[stats.configurations["head"].str.startswith("dummy:")]
    assert dummies["rank"].isna().all()
    rows = stats.configurations.dropna(subset=["rank"])
    assert rows.groupby("task")["rank"].apply(sorted).tolist() == [[1, 2, 3, 4]] * 2


def test_consensus_averages_each_configurations_rank_over_the_tasks(ranked):
    stats, _ = ranked
    consensus = stats.ranks.consensus.set_index("backbone_label")
    assert consensus["n_tasks"].eq(2).all()
    assert consensus.loc[PERFECT[0], ["mean_rank", "mean_rank_ci_low", "mean_rank_ci_high", "consensus_rank"]].tolist() \
        == [1, 1, 1, 1]
    expected = stats.configurations.dropna(subset=["rank"]).groupby("backbone_label")["rank"].mean()
    assert consensus["mean_rank"].to_dict() == pytest.approx(expected.to_dict())
    assert consensus.loc[POOR[0], "consensus_rank"] == 4


def test_every_format_shows_the_rank_and_its_interval(ranked):
    stats, run = ranked
    report = build_report(read_results(run), n_boot=400)
    assert {"rank", "rank_ci_low", "rank_ci_high"} <= set(render_report(report, "csv").splitlines()[0].split(","))
    markdown = render_report(report, "markdown")
    assert "rank [95%]" in markdown and "| 1 [1] " in markdown and "2 [2–3]" in markdown
    assert "### Rank stability" in markdown and "### Consensus ranking over tasks" in markdown
    assert "rank [95\\%]" in render_report(report, "latex") and "rank [95%]" in render_report(report, "html")


def test_ties_share_the_best_rank_and_an_unscorable_configuration_is_last():
    draws = {name: CellDraws({}, {"macro_f1": point}, {"macro_f1": np.array(values, float)}, 10)
             for name, point, values in (("a", 0.8, [0.8, 0.5, np.nan]), ("b", 0.8, [0.6, 0.5, 0.4]),
                                         ("c", np.nan, [0.1, 0.9, 0.2]))}
    ranks = task_ranks(draws, ["a", "b", "c"])
    assert ranks.reported.tolist() == [1, 1, 3]
    assert ranks.resampled.tolist() == [[1, 2, 3], [2, 2, 1], [3, 1, 2]]
    assert ranks.frequencies()[0].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3])
