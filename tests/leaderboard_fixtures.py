"""Run directories written from constructed predictions, in the store's real on-disk format.

Each model cell's stored metrics are scored by ``skinbench.metrics.score`` from its predictions and
each dummy's by ``skinbench.baselines.dummy_scores``, exactly as the runner does, so a test can
state expectations about predictions and read them back through the leaderboard.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from skinbench.baselines import dummy_scores
from skinbench.vocabulary import DUMMIES
from skinbench.metrics import score
from skinbench.record.store import ResultsStore


def cell_id(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:16]


def write_task(run_dir: Path, groups, y, predictions: dict[tuple[str, str, str], list], *, task: str = "moisture",
               dataset: str = "demo", classes=("a", "b"), train_counts=(30, 10), split: int = 0,
               ordinal: bool = False, columns: dict[str, list] | None = None, failed: tuple = ()) -> Path:
    """Append one task's rows (three dummies and every (backbone, augmenter, head) → per-seed predictions)
    for one test split. ``failed`` lists (backbone, augmenter, head, seed) stored as failures."""
    store = ResultsStore(run_dir)
    y, k = np.asarray(y), len(classes)
    test = pd.DataFrame({"image": [f"{task}/{split}/{i}.png" for i in range(len(y))], "group": [str(g) for g in groups],
                         **(columns or {})})
    y_train = np.repeat(np.arange(k), train_counts)
    seeds = range(max(len(p) for p in predictions.values()))
    base = {"dataset": dataset, "task": task, "split": split, "data_fingerprint": "data-1", "n_classes": k,
            "ordinal": ordinal, "n_test": len(y), "n_val": 4, "seconds": 0.1, "config": {"dataset": "constructed"}}
    for seed in seeds:
        for kind in DUMMIES:
            metrics, proba = dummy_scores(kind, y_train, y, k, ordinal, draws=200, seed=seed)
            _store(store, {**base, **_names(dataset, task, "-", "-", f"dummy:{kind}"), "seed": seed,
                           "n_train": len(y_train), "n_synthetic": 0, **metrics},
                   _frame(test, y, proba.argmax(1), proba, classes))
    for (backbone, augmenter, head), per_seed in predictions.items():
        for seed, pred in zip(seeds, per_seed):
            names = _names(dataset, task, backbone, augmenter, head)
            row = {**base, **names, "seed": seed, "n_train": len(y_train) - 4, "n_synthetic": 0}
            if (backbone, augmenter, head, seed) in failed:
                store.append({**row, "status": "failed", "error": "RuntimeError: deliberate failure"})
                continue
            pred = np.asarray(pred)
            proba = np.eye(k)[pred]
            _store(store, {**row, **score(y, pred, proba, k, ordinal)}, _frame(test, y, pred, proba, classes))
    return run_dir


def _names(dataset: str, task: str, backbone: str, augmenter: str, head: str) -> dict:
    return {"cell_id": cell_id(dataset, task, backbone, augmenter, head), "backbone": backbone.split("(")[0],
            "augmenter": augmenter, "head": head, "backbone_label": backbone, "augmenter_label": augmenter,
            "head_label": head}


def _store(store: ResultsStore, row: dict, frame: pd.DataFrame) -> None:
    store.write_predictions(row["cell_id"], row["seed"], row["split"], frame)
    store.append({**row, "status": "ok", "error": ""})


def _frame(test: pd.DataFrame, y: np.ndarray, pred: np.ndarray, proba: np.ndarray, classes) -> pd.DataFrame:
    frame = test.assign(y_true=[classes[i] for i in y], y_pred=[classes[i] for i in pred])
    for i, c in enumerate(classes):
        frame[f"proba_{c}"] = proba[:, i]
    return frame


def patients(n_patients: int, images_per_patient: int = 2) -> np.ndarray:
    """Patient id of every test image: ``images_per_patient`` consecutive images each."""
    return np.repeat([f"p{i:03d}" for i in range(n_patients)], images_per_patient)
