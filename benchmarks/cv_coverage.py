"""Coverage of the cross-validated macro-F1 interval, with and without its variance inflation.

Simulated patients with a known truth (:mod:`skinbench.leaderboard.simulation`): for each sample
size and population, ``--sets`` datasets are cross-validated with a logistic-regression head and
scored by the leaderboard's patient bootstrap; the share of intervals that cover the procedure's
true macro-F1 is printed for the leaderboard's interval (Nadeau-Bengio inflation) and for the plain
patient bootstrap. Nominal: 95%.

    .venv/bin/python benchmarks/cv_coverage.py                   # 40 and 200 patients, 3 populations (~1 min)
    .venv/bin/python benchmarks/cv_coverage.py --patients 40 --sets 500 --repeats 3
"""
from __future__ import annotations

import argparse

from skinbench.leaderboard.simulation import Population, cv_coverage

POPULATIONS = {"moderate": Population(), "weak": Population(separation=0.5),
               "strong, 4-d": Population(separation=1.5, dim=4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[40, 200])
    parser.add_argument("--sets", type=int, default=200, help="simulated datasets per cell (default 200)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="cv repeats per dataset (default 1)")
    parser.add_argument("--boot", type=int, default=500, help="bootstrap resamples (default 500)")
    args = parser.parse_args()
    print("patients  population    truth  estimate  width  coverage  plain_bootstrap")
    for n in args.patients:
        for name, population in POPULATIONS.items():
            r = cv_coverage(n, args.sets, args.folds, args.boot, population=population, repeats=args.repeats)
            print(f"{n:8d}  {name:12s}  {r['truth']:.3f}  {r['mean_estimate']:.3f}     {r['mean_width']:.3f}  "
                  f"{r['coverage']:.3f}     {r['coverage_plain_bootstrap']:.3f}")


if __name__ == "__main__":
    main()
