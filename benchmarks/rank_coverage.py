"""Are the leaderboard's rank intervals honest? Simulated test sets of known ranking.

Five configurations classify the same simulated test patients (2 images each, balanced binary labels):
one right on 95% of images ("better"), three on 75% ("equal": the same true macro-F1, independent
errors), one on 50% ("worse"). Their true ranks are 1, {2, 3, 4} (tied) and 5. Each test set is
scored on the task's patient resamples exactly as the leaderboard does
(:func:`skinbench.leaderboard.stats.bootstrap_task` on the task's plan, then
:func:`skinbench.leaderboard.stats.task_ranks` and the 2.5-97.5% percentiles of each rank).

Printed per test-set size (patients), over ``--sets`` test sets:

- equal: covers all = share of (test set, equal configuration) whose rank interval holds every rank 2-4
  (what an interval should do for configurations nobody can order); covers one = holds at least one of them;
  overlap = share of test sets where the three equal configurations' intervals all overlap;
- better / worse covers = share whose interval holds its true rank (1 / 5);
- better separated = share where the better configuration's interval is [1, 1] (it is told apart);
- mean width = mean number of ranks in an equal configuration's interval.

    .venv/bin/python benchmarks/rank_coverage.py              # 8, 20 and 40 patients, 200 sets each (~1 min)
    .venv/bin/python benchmarks/rank_coverage.py --sets 50    # a quicker look
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

ACCURACY = {"better": 0.95, "equal-1": 0.75, "equal-2": 0.75, "equal-3": 0.75, "worse": 0.5}
TRUE_RANKS = {"better": {1}, "equal-1": {2, 3, 4}, "equal-2": {2, 3, 4}, "equal-3": {2, 3, 4}, "worse": {5}}


def one_test_set(n_patients: int, rng: np.random.Generator, n_boot: int) -> dict[str, tuple[float, float]]:
    """Each configuration's rank interval on one simulated test set."""
    from skinbench.leaderboard.stats import (
        StoredPrediction,
        TaskPredictions,
        bootstrap_task,
        leaderboard_metrics,
        task_plan,
        task_ranks,
    )

    patient = np.repeat(np.arange(n_patients), 2)
    y = rng.permutation(np.resize([0, 1], len(patient)))
    files = {}
    for name, accuracy in ACCURACY.items():
        pred = np.where(rng.random(len(y)) < accuracy, y, 1 - y)
        files[(name, 0)] = StoredPrediction(patient, y, pred, None, {})
    task = TaskPredictions("simulated", f"set-{rng.integers(1 << 30)}", ["a", "b"], False,
                           {0: pd.Index([f"p{i}" for i in range(n_patients)])}, {0: files}, [])
    draws = bootstrap_task(task, task_plan(task, n_boot, 0), leaderboard_metrics(False))
    ranks = task_ranks(draws, list(ACCURACY))
    low, high = np.percentile(ranks.resampled, [2.5, 97.5], axis=0, method="inverted_cdf")
    return {name: (lo, hi) for name, lo, hi in zip(ACCURACY, low, high)}


def summarise(intervals: list[dict[str, tuple[float, float]]]) -> dict[str, float]:
    equal = [name for name in ACCURACY if name.startswith("equal")]
    spans = [(lo, hi) for one in intervals for name, (lo, hi) in one.items() if name in equal]
    return {
        "equal: covers all": np.mean([lo <= 2 and hi >= 4 for lo, hi in spans]),
        "equal: covers one": np.mean([lo <= 4 and hi >= 2 for lo, hi in spans]),
        "equal: overlap": np.mean([max(one[n][0] for n in equal) <= min(one[n][1] for n in equal) for one in intervals]),
        "equal: mean width": np.mean([hi - lo + 1 for lo, hi in spans]),
        "better covers 1": np.mean([one["better"][0] == 1 for one in intervals]),
        "better separated": np.mean([one["better"] == (1, 1) for one in intervals]),
        "worse covers 5": np.mean([one["worse"][1] == 5 for one in intervals]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=200, help="simulated test sets per size (default 200)")
    parser.add_argument("--patients", type=int, nargs="+", default=[8, 20, 40], help="test patients per set")
    parser.add_argument("--n-boot", type=int, default=1000, help="patient resamples per test set (default 1000)")
    args = parser.parse_args()
    rng = np.random.default_rng(2025)
    rows = []
    for n in args.patients:
        intervals = [one_test_set(n, rng, args.n_boot) for _ in range(args.sets)]
        rows.append({"patients": n, **summarise(intervals)})
    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    last = frame.iloc[-1]
    print(f"equal_overlap={last['equal: overlap']:.3f} better_separated={last['better separated']:.3f} "
          f"(at {int(last['patients'])} patients)")


if __name__ == "__main__":
    main()
