"""Cold and warm wall time of the demo suite with one shared embedding cache, and their ratio.

Each run writes to a fresh output folder, so every cell is recomputed; only the embedding
cache (a fresh temporary folder, or ``--cache-dir``) carries over from the cold run to the warm one.

    python benchmarks/cache_speedup.py [--suite benchmark/suites/demo.yaml]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from skinbench.execution.runner import run_suite

DEMO = Path(__file__).resolve().parents[1] / "benchmark" / "suites" / "demo.yaml"


def timed_run(suite: Path, out_dir: Path, cache_dir: Path) -> float:
    start = time.perf_counter()
    run_suite(suite, out_dir, cache_dir=cache_dir)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=DEMO)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cold = timed_run(args.suite, root / "cold", root / "cache")
        warm = timed_run(args.suite, root / "warm", root / "cache")
    print(f"suite={args.suite}")
    print(f"cold_s={cold:.1f}")
    print(f"warm_s={warm:.1f}")
    print(f"speedup={cold / warm:.2f}")


if __name__ == "__main__":
    main()
