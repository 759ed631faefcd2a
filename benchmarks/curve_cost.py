"""What a learning curve costs against the same suite trained on all patients only: wall time, rows, and
embedding forwards (the goal: only head fits are added, no forward pass).

Each variant runs with its own fresh cache, so the embedding cache entries written are the images a
backbone embedded. The curve's points subsample images the full-data rows already embed.

    .venv/bin/python benchmarks/curve_cost.py      # the label-efficiency suite, with and without its curve
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from skinbench.execution.runner import run_suite

SUITE = Path(__file__).resolve().parents[1] / "benchmark" / "suites" / "label_efficiency.yaml"
CURVE_FIELDS = ("train_fractions", "shots", "curve_draws")


def measure(suite: dict, root: Path) -> dict[str, float]:
    start = time.perf_counter()
    rows = run_suite(suite, root / "run", cache_dir=root / "cache")
    seconds = time.perf_counter() - start
    forwards = sum(1 for p in (root / "cache").rglob("*.npy") if "augmented" not in p.parts)
    models = rows[~rows["head"].str.startswith("dummy:")]
    return {"seconds": seconds, "rows": len(rows), "model rows": len(models),
            "head seconds": float(models["seconds"].sum()), "embedding forwards": forwards}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=SUITE)
    args = parser.parse_args()
    curved = yaml.safe_load(args.suite.read_text())
    plain = {**curved, "protocol": {k: v for k, v in curved["protocol"].items() if k not in CURVE_FIELDS}}
    with tempfile.TemporaryDirectory() as tmp:
        a = measure(plain, Path(tmp) / "plain")
        b = measure(curved, Path(tmp) / "curve")
    for key in a:
        ratio = b[key] / a[key] if a[key] else float("nan")
        print(f"{key}: all patients only={a[key]:.1f} with the curve={b[key]:.1f} ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
