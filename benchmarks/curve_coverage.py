"""Coverage of the learning-curve intervals: does the 95% interval at a training size cover the true mean macro-F1
of "train the probe on that many patients"?

The population: two balanced classes whose 64-d embeddings differ by ``--shift`` per dimension in unit noise,
one image per patient (the simulation of tests/test_learning_curves.py). The truth at n training patients is a
Monte-Carlo mean over ``--truth-draws`` training sets of n patients drawn from the population, each fitted by the
same logreg head with the same patient-grouped validation fold, scored on 4,000 fresh patients. Each experiment
runs the real pipeline (``run_suite``: 5-fold cv, a learning-curve point, ``--draws`` draws) on ``--patients`` patients and
asks whether the point's interval covers the truth at that point's mean training size (rounded) and whether the
full-data interval covers the truth at the full training size.

    .venv/bin/python benchmarks/curve_coverage.py [--experiments 40]
"""
from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from skinbench.api import Part
from skinbench.data.protocol import validation_fold
from skinbench.execution.runner import run_suite
from skinbench.leaderboard import read_results
from skinbench.leaderboard.stats.curves import learning_curves
from skinbench.metrics import score
from skinbench.plugins.heads.logreg import LogRegProbe

DIM, FRACTION = 64, 0.06


def draw_patients(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    return rng.normal(size=(n, DIM)) + np.where(y[:, None] == 1, shift, -shift), y


def fitted_f1(x: np.ndarray, y: np.ndarray, test: tuple[np.ndarray, np.ndarray], seed: int) -> float:
    groups = np.array([f"p{i}" for i in range(len(y))])
    fit, val = validation_fold(y, groups, 8, seed)
    head = LogRegProbe(tune_threshold=False)
    head.fit(Part([""] * fit.sum(), y[fit], groups[fit], x[fit]), Part([""] * val.sum(), y[val], groups[val], x[val]),
             2, seed)
    prediction = head.predict(Part([""] * len(test[1]), test[1], np.arange(len(test[1])).astype(str), test[0]))
    return score(test[1], prediction.labels, prediction.proba, 2, False)["macro_f1"]


def truth(n: int, shift: float, draws: int, rng: np.random.Generator) -> float:
    test = draw_patients(rng, 4000, shift)
    values = []
    while len(values) < draws:
        x, y = draw_patients(rng, n, shift)
        if len(np.unique(y)) == 2:  # the pipeline's subsample covers both classes
            values.append(fitted_f1(x, y, test, len(values)))
    return float(np.mean(values))


def experiment(root: Path, rng: np.random.Generator, patients: int, shift: float, draws: int) -> pd.DataFrame:
    x, y = draw_patients(rng, patients, shift)
    folder = root / "images"
    folder.mkdir(parents=True)
    vectors, rows = {}, []
    for i in range(patients):
        path = folder / f"{i}.png"
        Image.fromarray(np.full((4, 4, 3), i % 256, np.uint8)).save(path)
        vectors[str(path)] = x[i]
        rows.append({"image": str(path), "patient_id": f"p{i}", "label": "ab"[y[i]]})
    pd.DataFrame(rows).to_csv(root / "data.csv", index=False)
    np.savez(root / "embeddings.npz", **vectors)
    suite = {"datasets": [{"name": "generic-csv", "params": {"csv": str(root / "data.csv")}}],
             "backbones": [{"name": "precomputed", "params": {"file": str(root / "embeddings.npz")}}],
             "augmenters": ["none"], "heads": [{"name": "logreg", "params": {"tune_threshold": False}}],
             "protocol": {"scheme": "cv", "folds": 5, "seeds": [0], "dummy_draws": 50,
                          "train_fractions": [FRACTION], "curve_draws": draws}}
    run_suite(suite, root / "run", cache_dir=root / "cache")
    points = learning_curves(read_results(root / "run"), n_boot=1000).points
    return points[points["head"] == "logreg"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=40)
    parser.add_argument("--patients", type=int, default=150)
    parser.add_argument("--shift", type=float, default=0.25)
    parser.add_argument("--truth-draws", type=int, default=300)
    parser.add_argument("--draws", type=int, default=5, help="subsample draws per point (protocol.curve_draws)")
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    n_train = args.patients - args.patients // 5
    sizes = {"all": n_train, f"fraction={FRACTION:g}": math.ceil(FRACTION * n_train)}
    truths = {point: truth(n, args.shift, args.truth_draws, rng) for point, n in sizes.items()}
    print("truth:", {p: round(v, 3) for p, v in truths.items()}, "at training patients", sizes)
    covered = {point: [] for point in sizes}
    for e in range(args.experiments):
        with tempfile.TemporaryDirectory() as tmp:
            points = experiment(Path(tmp), rng, args.patients, args.shift, args.draws).set_index("point")
        for point in sizes:
            low, high = points.loc[point, ["macro_f1_ci_low", "macro_f1_ci_high"]]
            covered[point].append(low <= truths[point] <= high)
        print(f"experiment {e + 1}: " + ", ".join(f"{p} {np.mean(c):.0%}" for p, c in covered.items()), flush=True)
    for point, hits in covered.items():
        rate = np.mean(hits)
        se = np.sqrt(rate * (1 - rate) / len(hits))
        print(f"coverage {point} (n_train={sizes[point]}): {rate:.1%} ± {se:.1%} over {len(hits)} experiments "
              "(goal 95%)")


if __name__ == "__main__":
    main()
