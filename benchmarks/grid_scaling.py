"""Heads stage of a SCIN-sized grid on 1 and on 2 local Dask workers.

The grid: 10,000 images of 3,400 patients, one 5-class task, 3 precomputed 768-d backbones
x logreg and mlp x 3 seeds = 18 model cells. Embeddings are in the
cache before timing, so what is timed is the driver plus the head tasks. Each side gets a
fresh run directory and an already-started cluster (start-up is not timed).

    .venv/bin/python benchmarks/grid_scaling.py            # the full grid (~10-15 min on 2 cores)
    .venv/bin/python benchmarks/grid_scaling.py --quick    # 3,000 images, for a smoke test

The last line is ``ratio=<2-worker speed / 1-worker speed>``; the goal on 2 cores is >= 1.7.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def synthetic_dataset(folder: Path, n_images: int, n_patients: int, dim: int, backbones: int, seed: int = 0) -> dict:
    """A generic-csv dataset of tiny PNGs and one .npz of embeddings per backbone, with a learnable signal."""
    rng = np.random.default_rng(seed)
    patient_class = rng.choice(5, size=n_patients, p=[0.4, 0.25, 0.15, 0.12, 0.08])
    patients = np.sort(rng.integers(0, n_patients, size=n_images))
    patients[:n_patients] = np.arange(n_patients)  # every patient has at least one image
    labels = patient_class[patients]
    (folder / "images").mkdir(parents=True)
    paths = []
    for i in range(n_images):
        path = folder / "images" / f"{i:05d}.png"
        Image.fromarray(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    pd.DataFrame({"image": paths, "patient_id": [f"P{p:04d}" for p in patients], "label": labels}) \
        .to_csv(folder / "data.csv", index=False)
    centres = rng.normal(size=(5, dim))
    files = []
    for b in range(backbones):
        x = 0.35 * centres[labels] + rng.normal(size=(n_images, dim))
        file = folder / f"backbone{b}.npz"
        np.savez(file, **{p: v.astype(np.float32) for p, v in zip(paths, x)})
        files.append(file)
    return {
        "name": "grid-scaling",
        "datasets": [{"name": "generic-csv", "params": {"csv": str(folder / "data.csv"), "label_columns": ["label"]}}],
        "backbones": [{"name": "precomputed", "params": {"file": str(f), "model": f"synthetic-{i}"}}
                      for i, f in enumerate(files)],
        "heads": ["logreg", "mlp"],
        "protocol": {"seeds": 3, "dummy_draws": 200},
    }


def timed_run(checked, out: Path, scheduler: str) -> float:
    from skinbench.execution.runner import run_checked
    from skinbench.configuration.suite import Executor

    checked.out_dir = out
    start = time.perf_counter()
    results = run_checked(checked, executor=Executor(kind="dask", scheduler=scheduler))
    seconds = time.perf_counter() - start
    assert (results["status"] == "ok").all(), results.loc[results["status"] != "ok", "error"].tolist()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 images and 1,000 patients")
    args = parser.parse_args()
    n_images, n_patients = (3000, 1000) if args.quick else (10000, 3400)
    from dask.distributed import LocalCluster

    from skinbench.execution.embedding import embed_paths
    from skinbench.execution.cache import EmbeddingCache
    from skinbench.data.preflight import preflight

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suite = synthetic_dataset(root / "data", n_images, n_patients, dim=768, backbones=3)
        start = time.perf_counter()
        checked = preflight(suite, root / "out", root / "cache")
        print(f"preflight of {n_images} images: {time.perf_counter() - start:.1f} s")
        cache = EmbeddingCache(root / "cache")
        images = checked.datasets[0].tasks[0].samples["image"].tolist()
        for backbone in preflight(suite).plugins["backbones"]:  # fill the cache with copies, not the timed plugins
            embed_paths(backbone, images, cache, progress=False)
        seconds = {}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
                seconds[workers] = timed_run(checked, root / f"run-{workers}", cluster.scheduler_address)
            cells = 3 * 2 * 3
            print(f"{workers} worker(s): {seconds[workers]:.1f} s for {cells} model cells "
                  f"({seconds[workers] / cells:.1f} s per cell of one worker's time x {workers})")
    print(f"ratio={seconds[1] / seconds[2]:.3f}")


if __name__ == "__main__":
    main()
