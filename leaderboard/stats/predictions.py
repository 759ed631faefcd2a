"""Stored predictions, read once per (dataset, task): under cv the outer folds of a run join into one test part."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from skinbench.api import DataError, SkinbenchError
from skinbench.record.store import ResultsStore
from skinbench.vocabulary import DUMMY_HEADS, FULL_DATA


PREDICTION_COLUMNS = ("group", "y_true", "y_pred")
"""Decoded into :class:`StoredPrediction` arrays; every other non-probability column is kept as text."""


# ---------------------------------------------------------------- stored predictions


@dataclass
class StoredPrediction:
    """One stored (cell, seed, split) test prediction, as class indices per test image.

    Under cv it joins the outer folds: ``part`` says which fold predicted each image, and a dummy has
    one training prior per fold (``prior[part]``); under holdout there is one part."""

    patient: np.ndarray          # index into the split's patient list
    y: np.ndarray                # true class
    pred: np.ndarray | None      # predicted class (models)
    prior: np.ndarray | None     # (parts, classes): class probabilities of a dummy (its training prior per part)
    columns: dict[str, np.ndarray]  # the other stored columns as text (subgroups: region, skin_tone, ...)
    part: np.ndarray | None = None  # index into ``folds`` per image (None: all 0)
    folds: tuple[int, ...] = (0,)   # the outer fold of each part

    def __post_init__(self):
        if self.part is None:
            self.part = np.zeros(len(self.y), int)
        if self.prior is not None:
            self.prior = np.atleast_2d(self.prior)


@dataclass
class TaskPredictions:
    """Every stored prediction of one (dataset, task), per test split."""

    dataset: str
    task: str
    classes: list[str]
    ordinal: bool
    patients: dict[int, pd.Index]                               # split -> test patient ids
    files: dict[int, dict[tuple[str, int], StoredPrediction]]   # split -> (cell_id, seed) -> prediction
    missing: list[str]                                          # ok rows whose predictions file is absent:
                                                                # their configurations get no interval
    folds: int = 1                                              # outer folds per split (1: holdout)

    @property
    def cv(self) -> bool:
        return self.folds > 1

    def variance_inflation(self) -> float:
        """How much the patient bootstrap's variance is widened under cv (1 under holdout).

        The bootstrap holds the K fitted models fixed, but the folds' errors are correlated through
        their shared training patients, so it under-covers the procedure's performance (Bates, Hastie
        & Tibshirani, "Cross-validation: what does it estimate and how well does it do it?", JASA
        2023; measured here: 85–93% at 40 and 200 patients, :mod:`skinbench.leaderboard.simulation`).
        The correction is Nadeau & Bengio's ("Inference for the generalization error", Machine
        Learning 2003): the variance of the mean of K fold estimates is σ²(1/K + n_test/n_train)
        rather than σ²/K. With the pooled bootstrap variance standing for σ²/K that is a factor
        1 + K/(K − 1): 2.25 for 5 folds, which covered in 94–99% of the simulated data sets (40 and
        200 patients, three populations). Their 1/R for R repeated cross-validations is not used:
        repeats redraw folds of the *same* patients, and with it three repeats covered only 91–97%.
        """
        return cv_variance_inflation(self.folds)


def cv_variance_inflation(folds: int) -> float:
    """Nadeau & Bengio's factor 1 + K/(K − 1) on the patient bootstrap's variance under K-fold cv; 1 under holdout
    (``folds`` 1). Why it, and not their 1/R for repeats: :meth:`TaskPredictions.variance_inflation`."""
    return 1 + folds / (folds - 1) if folds > 1 else 1.0


def predictions_file(run_dir: str | Path, cell_id: str, seed: int, split: int = 0, fold: int = 0,
                     point: str = FULL_DATA, draw: int = 0) -> Path:
    """Where a run directory keeps one row's per-image test predictions."""
    return ResultsStore(run_dir).predictions_path(cell_id, int(seed), int(split), int(fold), str(point), int(draw))


def full_data(results: pd.DataFrame) -> pd.DataFrame:
    """The rows trained on every training patient: the leaderboard's; learning-curve rows are
    :mod:`skinbench.leaderboard.stats.curves`'s."""
    if "point" not in results:
        return results
    return results[results["point"].fillna(FULL_DATA).astype(str) == FULL_DATA]


def load_predictions(results: pd.DataFrame) -> dict[tuple[str, str], TaskPredictions]:
    """The stored predictions of every successful row, grouped by (dataset, task).

    ``results`` needs the ``run_dir`` column that :func:`skinbench.leaderboard.read_results` adds.
    """
    ok = results[results["status"] == "ok"]
    if len(ok) and "run_dir" not in ok:
        raise SkinbenchError("the results have no 'run_dir' column, so their stored predictions cannot be "
                             "found: read them with skinbench.leaderboard.read_results(run_dir)")
    one_scheme(results)
    return {(str(dataset), str(task)): _task_predictions(str(dataset), str(task), rows)
            for (dataset, task), rows in ok.groupby(["dataset", "task"], sort=False)}


def one_scheme(results: pd.DataFrame) -> str:
    """The evaluation scheme of the rows; holdout and cv rows test different patients and cannot share a table."""
    schemes = sorted(set(results["scheme"])) if "scheme" in results and len(results) else ["holdout"]
    if len(schemes) > 1:
        runs = sorted({str(d) for d in results.get("run_dir", pd.Series(dtype=str))})
        raise SkinbenchError(f"the results mix evaluation schemes {schemes} (run directories: {', '.join(runs)}); "
                             "a holdout and a cross-validated run test different patients, so give each "
                             "leaderboard the runs of one scheme")
    return schemes[0]


def _task_predictions(dataset: str, task: str, rows: pd.DataFrame) -> TaskPredictions:
    loaded = TaskPredictions(dataset, task, [], bool(rows["ordinal"].iloc[0]), {}, {}, [])
    first_file: dict[int, Path] = {}
    incomplete: set[str] = set()
    folds = rows.get("fold", pd.Series(0, index=rows.index)).astype(int)
    expected = {split: set(f) for split, f in folds.groupby(rows["split"].astype(int))}
    loaded.folds = max((len(f) for f in expected.values()), default=1)
    for (cell_id, seed, split), runs in rows.assign(fold=folds).groupby(["cell_id", "seed", "split"], sort=False):
        cell_id, seed, split = str(cell_id), int(seed), int(split)
        runs = runs.sort_values("fold")
        paths = [predictions_file(r.run_dir, getattr(r, "stored_cell", cell_id), getattr(r, "stored_seed", seed), split,
                                  r.fold, getattr(r, "point", FULL_DATA), getattr(r, "draw", 0))
                 for r in runs.itertuples(index=False)]
        absent = [str(p) for p in paths if not p.exists()]
        if absent or set(runs["fold"]) != expected[split]:  # an out-of-fold prediction must cover every patient
            loaded.missing += absent or [f"{paths[0].parent}/{cell_id}_s{seed}: outer fold(s) "
                                         f"{sorted(expected[split] - set(runs['fold']))} of split {split}"]
            incomplete.add(cell_id)
            continue
        frames = [pq.read_table(p).to_pydict() for p in paths]  # dicts of lists: ~3x faster than DataFrames
        frame, part = _join_folds(frames, paths)
        path = paths[0]
        classes = [c[len("proba_"):] for c in frame if c.startswith("proba_")]
        if not loaded.classes:
            loaded.classes = classes
        elif classes != loaded.classes:
            raise DataError(f"{path}: classes {classes} differ from {loaded.classes} in other predictions "
                            f"of {dataset}/{task}; the run directories mix incompatible runs")
        if split not in loaded.patients:  # under cv every repeat tests all patients: one index, shared resamples
            shared = next(iter(loaded.patients.values())) if loaded.cv and loaded.patients else None
            loaded.patients[split] = shared if shared is not None else pd.Index(pd.unique(np.array(frame["group"], str)))
            loaded.files[split], first_file[split] = {}, path
        stored = _stored_prediction(frame, loaded.classes, loaded.patients[split], runs["head"].iloc[0] in DUMMY_HEADS,
                                    path, part, tuple(int(f) for f in runs["fold"]))
        reference = next(iter(loaded.files[split].values()), None)
        if reference is not None and not _same_test_part(reference, stored, len(classes)):
            raise DataError(f"{path}: its test patients or labels differ from those in {first_file[split]} "
                            f"({dataset}/{task}, split {split}); one split's predictions must share one test part")
        loaded.files[split][(cell_id, seed)] = stored
    for split in list(loaded.files):  # a configuration scored on some of its seeds only would mislead
        loaded.files[split] = {key: f for key, f in loaded.files[split].items() if key[0] not in incomplete}
        if not loaded.files[split]:
            del loaded.files[split], loaded.patients[split]
    return loaded


def _join_folds(frames: list[dict[str, list]], paths: list[Path]) -> tuple[dict[str, list], np.ndarray]:
    """The outer folds' predictions of one (cell, seed, split) as one test part, and each image's fold index.

    Each patient must be in exactly one fold: a patient predicted twice would be counted twice."""
    if len(frames) == 1:
        return frames[0], np.zeros(len(frames[0]["group"]), int)
    seen: dict[str, Path] = {}
    for frame, path in zip(frames, paths):
        for group in set(frame["group"]):
            if group in seen:
                raise DataError(f"{path}: patient '{group}' is also in the test part of {seen[group]}; the outer "
                                "folds of one run must be patient-disjoint (the run directories mix fold assignments)")
            seen[group] = path
    joined = {name: [v for frame in frames for v in frame.get(name, [None] * len(frame["group"]))] for name in frames[0]}
    return joined, np.repeat(np.arange(len(frames)), [len(f["group"]) for f in frames])


def _stored_prediction(frame: dict[str, list], classes: list[str], patients: pd.Index, dummy: bool,
                       path: Path, part: np.ndarray, folds: tuple[int, ...]) -> StoredPrediction:
    y = _codes(frame["y_true"], classes)
    patient = patients.get_indexer(np.array(frame["group"], str))
    if (y < 0).any() or (patient < 0).any():
        raise DataError(f"{path}: a true label outside {classes} or a patient outside this split's test part")
    columns = {name: np.array(values, str) for name, values in frame.items()
               if name not in PREDICTION_COLUMNS and not name.startswith("proba_")}
    if dummy:
        first = [int(np.argmax(part == p)) for p in range(len(folds))]  # a dummy's rows all carry its prior
        prior = np.array([[frame[f"proba_{c}"][i] for c in classes] for i in first], float)
        return StoredPrediction(patient, y, None, prior / prior.sum(1, keepdims=True), columns, part, folds)
    pred = _codes(frame["y_pred"], classes)
    if (pred < 0).any():
        raise DataError(f"{path}: a predicted label outside {classes}")
    return StoredPrediction(patient, y, pred, None, columns, part, folds)


def _codes(labels: list, classes: list[str]) -> np.ndarray:
    """Class index of every label (as stored: text), -1 for a label outside ``classes``."""
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup.get(str(label), -1) for label in labels], int)


def _same_test_part(a: StoredPrediction, b: StoredPrediction, k: int) -> bool:
    return len(a.y) == len(b.y) and np.array_equal(np.bincount(a.patient * k + a.y), np.bincount(b.patient * k + b.y))
