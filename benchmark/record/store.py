"""The run directory's results store: an append-only log of checksummed records.

Layout of ``DIR``::

    suite.yaml            the resolved suite (every default filled in, each plugin's identity)
    receipt.json          package versions, git commit, device, start time, every plugin found
    split/<dataset>.json  test group ids per split (and the protocol that chose them)
    results.jsonl         the store of record: one checksummed JSON record per (cell, seed, split, fold, point, draw)
    results.csv / results.parquet   exports of the current rows, for pandas and spreadsheets
    predictions/<cell_id>_s<seed>[_r<split>][_f<fold>][_p<point>_d<draw>].parquet   per-sample test probabilities
    generation_log.csv    provenance of every synthetic image (augmenters that log)

Why a log and not a table rewritten in place: a run killed at *any* byte leaves at most one
torn last line, which the checksum detects; every earlier record is intact. A torn or
corrupt record is reported, moved to ``results.corrupt.jsonl`` and recomputed on resume.
Each record carries the schema version; aggregates are never stored.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from skinbench.api import SUBGROUP_COLUMNS, SkinbenchError, Task
from skinbench.atomic import atomic_write, atomic_write_json, readable_mode
from skinbench.vocabulary import DUMMY_HEADS, FULL_DATA, METRICS  # noqa: F401 - re-exported: readers of the store use them

SCHEMA_VERSION = 2
"""1: the old ``results.csv`` as store (imported on first use); 2: checksummed JSONL records."""

IDENTITY_COLUMNS = (
    "cell_id", "dataset", "task", "backbone", "augmenter", "head", "seed", "split", "fold", "point", "draw",
    "backbone_label", "augmenter_label", "head_label", "data_fingerprint",
)
RESULT_COLUMNS = IDENTITY_COLUMNS + (
    "scheme", "status", "error", "n_train", "n_train_patients", "n_train_per_class", "n_synthetic", "n_val",
    "n_test", "n_classes", "ordinal",
    *METRICS, "seconds", "config",
)
NUMERIC_COLUMNS = ("seed", "split", "fold", "draw", "n_train", "n_train_patients", "n_synthetic", "n_val", "n_test", "n_classes", "seconds")
ROW_KEY = ("cell_id", "seed", "split", "fold", "point", "draw")
"""One row per key; ``fold`` is the outer cross-validation fold (0 under holdout, and in records written
before the cv scheme, which lack it); ``point`` is the learning curve's training size ('all', or e.g.
'fraction=0.25', 'shots=4') and ``draw`` its subsample ('all', draw 0, in records written before curves)."""

REQUIRED_KEYS = ("cell_id", "seed", "split")

logger = logging.getLogger("skinbench.record.store")


class ResultsStore:
    """Reads and appends the records of one run directory; the driver is its only writer."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.log = self.dir / "results.jsonl"
        self.results_csv = self.dir / "results.csv"
        self.results_parquet = self.dir / "results.parquet"
        self.predictions_dir = self.dir / "predictions"
        self.problems: list[str] = []

    # ---------------------------------------------------------------- reading
    def exists(self) -> bool:
        return self.log.exists() or self.results_csv.exists()

    def records(self) -> list[dict[str, Any]]:
        """Every intact record, oldest first; torn or corrupt lines are listed in :attr:`problems`."""
        self.problems = []
        if not self.log.exists():
            return self._legacy_rows()
        rows = []
        with open(self.log, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                row, problem = _decode(line)
                if problem:
                    self.problems.append(f"{self.log} line {number}: {problem}")
                elif row is not None:
                    rows.append(row)
        return rows

    def read(self) -> pd.DataFrame:
        """The current rows: one per (cell_id, seed, split, fold), the latest record winning (a retried
        failure is superseded by its success). Columns are :data:`RESULT_COLUMNS`."""
        records = self.records()
        frame = pd.DataFrame.from_records(records, columns=list(RESULT_COLUMNS)) if records \
            else pd.DataFrame(columns=list(RESULT_COLUMNS))
        return latest_rows(typed(frame))

    def finished(self) -> set[tuple[str, int, int, int, str, int]]:
        """Row keys (:data:`ROW_KEY`) computed successfully and with their predictions on disk."""
        df = self.read()
        ok = df[df["status"] == "ok"]
        keys = zip(ok["cell_id"].astype(str), ok["seed"].astype(int), ok["split"].astype(int), ok["fold"].astype(int),
                   ok["point"].astype(str), ok["draw"].astype(int))
        return {key for key in keys if self.predictions_path(*key).exists()}

    def predictions_path(self, cell_id: str, seed: int, split: int = 0, fold: int = 0, point: str = FULL_DATA,
                         draw: int = 0) -> Path:
        suffix = (f"_r{split}" if split else "") + (f"_f{fold}" if fold else "")
        if point != FULL_DATA:
            suffix += f"_p{point.replace('=', '')}_d{draw}"
        return self.predictions_dir / f"{cell_id}_s{seed}{suffix}.parquet"

    # ---------------------------------------------------------------- writing
    def prepare(self) -> list[str]:
        """Before appending: import a legacy ``results.csv`` and quarantine torn or corrupt records.

        Returns the problems found, so the caller can report them; the intact records are kept."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.log.exists() and self.results_csv.exists():
            legacy = self._legacy_rows()
            atomic_write(self.log, lambda fh: fh.writelines(_encode(r) for r in legacy))
        if not self.log.exists():
            return []
        lines = self.log.read_bytes().splitlines(keepends=True)
        decoded = [_decode(line) for line in lines]
        problems = [f"{self.log} line {n}: {why}" for n, (_, why) in enumerate(decoded, start=1) if why]
        if problems:
            with open(self.dir / "results.corrupt.jsonl", "ab") as fh:
                fh.writelines(line.rstrip(b"\n") + b"\n" for line, (_, why) in zip(lines, decoded) if why)
            atomic_write(self.log, lambda fh: fh.writelines(line for line, (row, _) in zip(lines, decoded) if row))
            logger.warning("%s: %d torn or corrupt record(s) moved to results.corrupt.jsonl; they are recomputed",
                           self.log, len(problems))
        return problems

    def append(self, row: dict[str, Any]) -> None:
        """Append one checksummed record and fsync, so an interrupted run keeps every finished cell."""
        self.dir.mkdir(parents=True, exist_ok=True)
        new = not self.log.exists()
        with open(self.log, "ab") as fh:
            fh.write(_encode({k: _plain(row.get(k)) for k in RESULT_COLUMNS}))
            fh.flush()
            os.fsync(fh.fileno())
        if new:
            os.chmod(self.log, readable_mode())

    def export(self) -> None:
        """Write ``results.csv`` and ``results.parquet`` from the log (atomically, readable by pandas)."""
        frame = self.read()
        frame["config"] = [json.dumps(c, sort_keys=True, default=str) if isinstance(c, dict) else c
                           for c in frame["config"]]
        atomic_write(self.results_csv, lambda fh: frame.to_csv(fh, index=False))
        atomic_write(self.results_parquet, lambda fh: frame.to_parquet(fh, index=False))

    def write_predictions(self, cell_id: str, seed: int, split: int, frame: pd.DataFrame, fold: int = 0,
                          point: str = FULL_DATA, draw: int = 0) -> Path:
        return atomic_write(self.predictions_path(cell_id, seed, split, fold, point, draw),
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

    # ---------------------------------------------------------------- legacy
    def _legacy_rows(self) -> list[dict[str, Any]]:
        """Rows of a schema-1 run directory (``results.csv`` was the store), with ``split`` 0."""
        if not self.results_csv.exists():
            return []
        try:
            frame = pd.read_csv(self.results_csv, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise SkinbenchError(f"{self.results_csv}: cannot be read ({exc.__class__.__name__}: {exc}); "
                                 "move it away to start the run directory afresh") from None
        if "split" not in frame:
            frame["split"] = "0"
        return [{k: _legacy_value(k, v) for k, v in row.items() if k in RESULT_COLUMNS}
                for row in frame.to_dict("records")]


def prediction_frame(task: Task, test: pd.DataFrame, y: np.ndarray, labels: np.ndarray, proba: np.ndarray) -> pd.DataFrame:
    """The stored per-sample test predictions: true and predicted class, probabilities, subgroup columns."""
    classes = [str(c) for c in task.classes]
    frame = pd.DataFrame({"image": test["image"].astype(str).to_numpy(), "group": test["group"].astype(str).to_numpy(),
                          "y_true": [classes[i] for i in y], "y_pred": [classes[i] for i in labels]})
    for i, c in enumerate(classes):
        frame[f"proba_{c}"] = proba[:, i]
    for column in SUBGROUP_COLUMNS:  # kept so subgroup metrics (e.g. by skin tone) need no rerun
        if column in test:
            frame[column] = test[column].astype(str).to_numpy()
    return frame


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers as numbers (NaN where absent), ``ordinal`` as bool, text columns as text."""
    frame = frame.copy()
    for column in (*METRICS, *NUMERIC_COLUMNS):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in ("split", "fold", "draw"):
        if column in frame:
            frame[column] = frame[column].fillna(0).astype(int)
    if "point" in frame:  # records written before learning curves are full-data rows
        frame["point"] = frame["point"].fillna(FULL_DATA).astype(str)
    if "seed" in frame:
        frame["seed"] = frame["seed"].astype("Int64").astype(int) if frame["seed"].notna().all() else frame["seed"]
    if "ordinal" in frame:
        frame["ordinal"] = frame["ordinal"].map(lambda v: v if isinstance(v, bool) else str(v) == "True")
    if "scheme" in frame:  # records written before the cv scheme existed are holdout
        frame["scheme"] = frame["scheme"].fillna("holdout").astype(str)
    for column in ("status", "error", "n_train_per_class", "cell_id", "dataset", "task", "backbone", "augmenter", "head",
                   "backbone_label", "augmenter_label", "head_label", "data_fingerprint"):
        if column in frame:
            frame[column] = frame[column].fillna("").astype(str)
    return frame


def latest_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per :data:`ROW_KEY`: the last successful one, else the last one (a retried failure
    is superseded by its success; merging run directories never lets a failure hide a success)."""
    if frame.empty:
        return frame.reset_index(drop=True)
    ok = (frame["status"] == "ok").to_numpy()
    order = np.argsort(ok, kind="stable")  # failures first, each group in its original order
    kept = frame.iloc[order].drop_duplicates(subset=list(ROW_KEY), keep="last")
    return kept.sort_index().reset_index(drop=True)


def merge_rows(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Rows of several run directories, deduplicated by :data:`ROW_KEY` (a shared dummy row counts once)."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    return latest_rows(pd.concat(frames, ignore_index=True))


def _encode(row: dict[str, Any]) -> bytes:
    body = json.dumps(row, sort_keys=True, separators=(",", ":"), default=str, allow_nan=False)
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    return json.dumps({"v": SCHEMA_VERSION, "sha": digest, "row": json.loads(body)},
                      separators=(",", ":"), sort_keys=True).encode() + b"\n"


def _decode(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(row, None) for an intact record, (None, why) for a torn or corrupt one, (None, None) for a blank line."""
    if not line.strip():
        return None, None
    if not line.endswith(b"\n"):
        return None, "torn record (the run was killed while writing it)"
    try:
        record = json.loads(line)
        row = record["row"]
        body = json.dumps(row, sort_keys=True, separators=(",", ":"), default=str, allow_nan=False)
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"not a valid record ({exc.__class__.__name__})"
    if record.get("v") != SCHEMA_VERSION:
        return None, f"schema version {record.get('v')!r}; this skinbench reads version {SCHEMA_VERSION}"
    if hashlib.sha256(body.encode()).hexdigest()[:16] != record.get("sha"):
        return None, "checksum mismatch (the record was altered or damaged)"
    missing = [k for k in REQUIRED_KEYS if k not in row]
    if missing:
        return None, f"record lacks {missing}"
    return row, None


def _plain(value: Any) -> Any:
    """JSON-safe cell values: NaN as null, numpy scalars as Python numbers."""
    if value is None:
        return None
    if isinstance(value, (np.floating, float)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _legacy_value(column: str, value: str) -> Any:
    if value == "":
        return None
    if column == "config":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
