"""``skinbench validate`` on a generated 10,000-image CSV dataset: cold (empty cache) and warm (digests persisted).

Each measurement is a fresh ``skinbench validate`` process, as a user runs it; the warm run has the digest
store the cold one wrote (``<cache>/digests.sqlite``), so it stats the images instead of reading them.
The floor is a process that imports ``skinbench.cli`` and does nothing (validate imports no torch, timm or
scikit-learn on a machine without a GPU).

    .venv/bin/python benchmarks/validate_scaling.py [--images 10000]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

SKINBENCH = Path(sys.executable).with_name("skinbench")


def make_dataset(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    folder = root / "images"
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        path = folder / f"{i:05d}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
        rows.append({"image": f"images/{path.name}", "patient_id": f"p{i // 3}", "label": ["a", "b", "c"][i % 3]})
    pd.DataFrame(rows).to_csv(root / "data.csv", index=False)
    suite = {"datasets": [{"name": "generic-csv", "params": {"csv": str(root / "data.csv")}}],
             "backbones": ["handcrafted"], "heads": ["logreg"]}
    (root / "suite.yaml").write_text(yaml.safe_dump(suite))
    return root / "suite.yaml"


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        suite = make_dataset(Path(tmp), args.images)
        validate = [str(SKINBENCH), "validate", str(suite), "--cache-dir", str(Path(tmp) / "cache")]
        floor = timed([sys.executable, "-c", "import skinbench.cli"])
        cold = timed(validate)
        warm = timed(validate)
    print(f"images={args.images} imports_only={floor:.1f}s cold={cold:.1f}s warm={warm:.1f}s "
          f"ratio_warm_to_cold={warm / cold:.2f} ratio_warm_to_imports={warm / floor:.2f}")


if __name__ == "__main__":
    main()
