"""What cross-validation costs against holdout on the same suite: wall time, embedding forwards, synthetic images.

Each scheme runs with its own fresh cache, so the embedding cache entries written are the images a
backbone embedded and the augmented images in the cache are the images an augmenter made (the
classical augmenter keys its images by source content, seed and repeat, as the Stable Diffusion
augmenters do, so a source's images are made once and shared by every fold that trains on it).

    .venv/bin/python benchmarks/cv_cost.py            # the demo suite, holdout vs 5-fold cv
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from skinbench.execution.runner import run_suite

DEMO = Path(__file__).resolve().parents[1] / "benchmark" / "suites" / "demo.yaml"


def measure(suite: dict, root: Path) -> dict[str, float]:
    start = time.perf_counter()
    rows = run_suite(suite, root / "run", cache_dir=root / "cache")
    seconds = time.perf_counter() - start
    embeddings = sum(1 for p in (root / "cache").rglob("*") if p.is_file() and "augmented" not in p.parts
                     and p.suffix == ".npy")
    synthetic = sum(1 for _ in (root / "cache" / "augmented").rglob("*.png"))
    return {"seconds": seconds, "rows": len(rows), "embeddings": embeddings, "synthetic": synthetic}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=DEMO)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    holdout = yaml.safe_load(args.suite.read_text())
    cv = {**holdout, "protocol": {k: v for k, v in holdout.get("protocol", {}).items()
                                  if k not in ("test_fraction", "tau", "repeats", "resample_split")}
          | {"scheme": "cv", "folds": args.folds}}
    with tempfile.TemporaryDirectory() as tmp:
        a = measure(holdout, Path(tmp) / "holdout")
        b = measure(cv, Path(tmp) / "cv")
    for key in a:
        print(f"{key}: holdout={a[key]:.1f} cv={b[key]:.1f} ratio={b[key] / a[key] if a[key] else float('nan'):.2f}")


if __name__ == "__main__":
    main()
