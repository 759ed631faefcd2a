"""The leak near-duplicates cause, and its cure: permuted-label Δ before and after joining them.

The demo's hyperpigmentation patches with labels permuted in patient blocks (no signal), plus a copy of every
image with one pixel changed under a new patient id (``skinbench.data.audit.copies``). logreg and knn on the
handcrafted features, 3 seeds × 3 holdout splits, with and without ``protocol.join_near_duplicates``.

    .venv/bin/python benchmarks/near_duplicate_leakage.py                 # simulator seeds 0-4 (~1 min)
    .venv/bin/python benchmarks/near_duplicate_leakage.py --transform jpeg90

The last line is ``above_chance_apart=<share of (seed, head) called above chance without the join>,
above_chance_joined=<the same with it>``.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="simulator seeds (default 5)")
    parser.add_argument("--patients", type=int, default=40, help="patients before copying (default 40)")
    parser.add_argument("--transform", default="pixel", help="pixel, jpeg90 or crop95")
    args = parser.parse_args()
    from skinbench.data.audit.copies import leaky_copies
    from skinbench.execution.runner import run_suite
    from skinbench.leaderboard import read_results
    from skinbench.leaderboard.stats import leaderboard_stats

    called = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            csv = leaky_copies(Path(tmp) / f"data{seed}", n_patients=args.patients, image_size=32, seed=seed,
                               transform=args.transform)
            for join in (False, True):
                suite = {"name": "leak", "datasets": [{"name": "generic-csv", "params": {
                             "csv": str(csv), "group_column": "patient_id", "label_columns": ["label"]}}],
                         "backbones": [{"name": "handcrafted", "params": {"size": 32}}], "heads": ["logreg", "knn"],
                         "protocol": {"seeds": 3, "repeats": 3, "join_near_duplicates": join}}
                out = Path(tmp) / f"run{seed}-{join}"
                run_suite(suite, out)
                configurations = leaderboard_stats(read_results(out)).configurations
                for row in configurations[configurations["verdict"].notna()].itertuples():
                    called[join].append(row.verdict == "above_chance")
                    print(f"seed {seed} {'joined' if join else 'apart '} {row.head:7s} Δ vs stratified "
                          f"{row.delta_vs_stratified:+.3f} [{row.delta_vs_stratified_ci_low:+.3f}, "
                          f"{row.delta_vs_stratified_ci_high:+.3f}] {row.verdict}", flush=True)
    share = {join: sum(v) / len(v) for join, v in called.items()}
    print(f"above_chance_apart={share[False]:.2f}, above_chance_joined={share[True]:.2f}")


if __name__ == "__main__":
    main()
