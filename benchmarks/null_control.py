"""Null control of the verdicts: logreg heads trained on permuted labels must stay at chance.

The heads are the built-in ``logreg-permuted`` null control: 24 logistic-regression heads trained on
permuted training labels, on the demo data (5 tasks, 3 seeds, the demo's 8-patient test split, or all 40
patients under ``--scheme cv``) = 120 configurations. An older seed-only `*` rule called 8 of them above
chance. Here each configuration gets the leaderboard's verdict
(patient bootstrap, one-sided, Holm over all configurations), and for calibration the share of
uncorrected p < 0.05 is printed too (about 5% if the p-values are honest, less if conservative).

    .venv/bin/python benchmarks/null_control.py             # 24 heads x 5 tasks (~3 min on 2 cores)
    .venv/bin/python benchmarks/null_control.py --heads 4   # a quicker look
    .venv/bin/python benchmarks/null_control.py --scheme cv # patient-grouped 5-fold cross-validation

The last line is ``above_chance=<share of the permuted configurations called above chance>``.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", type=int, default=24, help="permuted-label heads (default 24)")
    parser.add_argument("--scheme", choices=("holdout", "cv"), default="holdout", help="evaluation scheme")
    parser.add_argument("--folds", type=int, default=5, help="outer folds under --scheme cv (default 5)")
    args = parser.parse_args()
    from skinbench.leaderboard import read_results
    from skinbench.leaderboard.stats import leaderboard_stats
    from skinbench.execution.runner import run_suite

    suite = {
        "name": "null-control",
        "datasets": [{"name": "demo", "params": {"n_patients": 40}}],  # the demo suite's data
        "backbones": [{"name": "handcrafted"}],
        "heads": [{"name": "logreg-permuted", "params": {"permutation": i}} for i in range(args.heads)],
        "protocol": {"seeds": 3, **({"scheme": "cv", "folds": args.folds} if args.scheme == "cv" else {})},
    }
    with tempfile.TemporaryDirectory() as tmp:
        run_suite(suite, Path(tmp) / "run", progress=False)
        configurations = leaderboard_stats(read_results(Path(tmp) / "run")).configurations
    models = configurations[configurations["verdict"].notna()]
    counts = models["verdict"].value_counts().to_dict()
    raw = float((models["p_vs_stratified"] < 0.05).mean())
    print(f"{len(models)} permuted-label configurations: verdicts {counts}; "
          f"uncorrected one-sided p < 0.05 in {raw:.1%}")
    print(f"above_chance={(models['verdict'] == 'above_chance').mean():.3f}")


if __name__ == "__main__":
    main()
