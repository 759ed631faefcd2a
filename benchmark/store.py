"""The run directory: resolved suite, receipt, split, raw results, predictions.

Layout of ``DIR``::

    suite.yaml            the resolved suite (every default filled in)
    receipt.json          package versions, git commit, device, start time
    split/<dataset>.json  test group ids (and the protocol that chose them)
    results.csv           one raw row per (cell, seed); aggregates are never stored
    predictions/<cell_id>_s<seed>.parquet   per-sample probabilities of the test part
    generation_log.csv    provenance of every synthetic image (augmenters that log)

Rows are appended and flushed one at a time, so a killed run loses at most the
cell in flight and a rerun skips every ``ok`` row.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .atomic import atomic_write, atomic_write_json

METRICS = (
    "macro_f1", "weighted_f1", "accuracy", "balanced_accuracy", "mcc", "cohen_kappa",
    "qwk", "auroc", "pr_auc", "top2_accuracy",
)
IDENTITY_COLUMNS = (
    "cell_id", "dataset", "task", "backbone", "augmenter", "head", "seed",
    "backbone_label", "augmenter_label", "head_label", "data_fingerprint",
)
RESULT_COLUMNS = IDENTITY_COLUMNS + (
    "status", "error", "n_train", "n_synthetic", "n_val", "n_test", "n_classes", "ordinal",
    *METRICS, "seconds", "config",
)
DUMMY_HEADS = ("dummy:most_frequent", "dummy:uniform", "dummy:stratified")


class ResultsStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.results_csv = self.dir / "results.csv"
        self.predictions_dir = self.dir / "predictions"

    def read(self) -> pd.DataFrame:
        if not self.results_csv.exists():
            return pd.DataFrame(columns=RESULT_COLUMNS)
        df = pd.read_csv(self.results_csv, dtype=str, keep_default_na=False)  # a task named 'NA' stays 'NA'
        numeric = [c for c in (*METRICS, "seed", "n_train", "n_synthetic", "n_val", "n_test", "n_classes", "seconds")
                   if c in df]
        df[numeric] = df[numeric].apply(pd.to_numeric, errors="coerce")
        if "ordinal" in df:
            df["ordinal"] = df["ordinal"].map({"True": True, "False": False})
        return df

    def finished(self) -> set[tuple[str, int]]:
        """(cell_id, seed) pairs already computed successfully."""
        df = self.read()
        ok = df[df["status"] == "ok"]
        return {(str(c), int(s)) for c, s in zip(ok["cell_id"], ok["seed"])}

    def append(self, row: dict[str, Any]) -> None:
        """Append one row and fsync, so an interrupted run keeps every finished cell."""
        self.dir.mkdir(parents=True, exist_ok=True)
        new = not self.results_csv.exists()
        with open(self.results_csv, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _cell(row.get(k)) for k in RESULT_COLUMNS})
            fh.flush()
            os.fsync(fh.fileno())

    def drop_failed(self, keys: Iterable[tuple[str, int]]) -> None:
        """Remove failed rows that are about to be retried, so each (cell, seed) has one row."""
        keys = set(keys)
        df = self.read()
        if df.empty:
            return
        stale = [(str(c), int(s)) in keys and st != "ok" for c, s, st in zip(df["cell_id"], df["seed"], df["status"])]
        if any(stale):
            atomic_write(self.results_csv, lambda fh: df[[not x for x in stale]].to_csv(fh, index=False))

    def write_predictions(self, cell_id: str, seed: int, frame: pd.DataFrame) -> Path:
        return atomic_write(self.predictions_dir / f"{cell_id}_s{seed}.parquet",
                            lambda fh: frame.to_parquet(fh, index=False))

    def write_json(self, relative: str, payload: Any) -> Path:
        return atomic_write_json(self.dir / relative, payload)

    def append_generation_log(self, frame: pd.DataFrame) -> None:
        """Add synthetic-image provenance; a resumed run re-augmenting a task adds no duplicate rows."""
        path = self.dir / "generation_log.csv"
        if path.exists():
            frame = pd.concat([pd.read_csv(path, dtype=str, keep_default_na=False), frame.astype(str)], ignore_index=True)
            frame = frame.drop_duplicates(subset=["task", "augmenter", "seed", "image"], keep="first")
        atomic_write(path, lambda fh: frame.to_csv(fh, index=False))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return value
