"""Learning curves: which training patients a fold keeps at each point of a curve, and how many it really got.

A point is a fraction of the fold's training patients (``fraction=0.25``) or a number of images per class
(``shots=4``); ``all`` is the ordinary full-data row. The test patients never change along a curve: only the
training part is subsampled, and the validation fold and the augmentation sources are then drawn from inside
the subsample, so a 10% point never sees the other 90%.

Subsamples are *nested* by draw: draw d walks one seeded order of the training patients, and every point
of draw d takes patients from the front of that order (fractions: a prefix; shots: the patients a class
still needs, in order). The 25% subsample of draw d therefore contains its 10% subsample, and a curve rises
or falls with data, not with the luck of fresh draws. The order depends only on the data and the split
(not on the training seed), so the same dataset and protocol give the same subsamples in every suite.
"""
from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from skinbench.vocabulary import FULL_DATA

MIN_PATIENTS = 2
"""A subsample keeps at least two patients: the validation fold needs one besides the fit part."""


def curve_points(fractions: list[float], shots: list[int]) -> list[str]:
    """The curve's points as row keys, smallest first; a fraction of 1 is the full-data row and is not repeated."""
    points = [f"fraction={format(f, 'g')}" for f in sorted(set(fractions)) if f < 1]
    return points + [f"shots={k}" for k in sorted(set(shots))]


def parse_point(point: str) -> tuple[str, float]:
    """('all', 1.0), ('fraction', 0.25) or ('shots', 4.0)."""
    if point == FULL_DATA:
        return FULL_DATA, 1.0
    kind, _, value = point.partition("=")
    return kind, float(value)


@dataclass(frozen=True)
class Subsample:
    """The training rows a point keeps, and what it really got."""

    rows: pd.DataFrame
    patients: int
    per_class: dict[str, int]

    def per_class_text(self) -> str:
        return json.dumps(self.per_class, sort_keys=True)


def patient_order(train: pd.DataFrame, split_seed: int, outer: int, draw: int) -> list[str]:
    """Draw ``draw``'s seeded order of the training patients, covering every class as early as it can.

    A seeded shuffle, then one patient per class (classes in a seeded order, the first patient holding
    it) is moved to the front, so every prefix of at least that many patients holds every class."""
    patients = sorted(train["group"].astype(str).unique())
    rng = np.random.default_rng([split_seed, outer, draw, zlib.crc32(b"learning-curve")])
    order = [patients[i] for i in rng.permutation(len(patients))]
    classes_of = train.assign(group=train["group"].astype(str)).groupby("group")["label"].agg(lambda s: set(map(str, s)))
    labels = sorted({str(v) for v in train["label"]})
    front: list[str] = []
    for label in [labels[i] for i in rng.permutation(len(labels))]:
        if not any(label in classes_of[p] for p in front):
            front.append(next(p for p in order if label in classes_of[p]))
    return front + [p for p in order if p not in set(front)]


def subsample(train: pd.DataFrame, point: str, order: list[str]) -> Subsample:
    """The rows of the patients ``point`` keeps from ``order`` (see the module docstring)."""
    kind, value = parse_point(point)
    groups = train["group"].astype(str)
    if kind == FULL_DATA:
        kept = order
    elif kind == "fraction":
        kept = order[:max(MIN_PATIENTS, math.ceil(value * len(order)))]
    else:
        kept = _shots(train, groups, order, int(value))
    rows = train[groups.isin(set(kept))].reset_index(drop=True)
    counts = rows["label"].astype(str).value_counts()
    per_class = {str(c): int(counts.get(str(c), 0)) for c in sorted({str(v) for v in train["label"]})}
    return Subsample(rows, len(kept), per_class)


def _shots(train: pd.DataFrame, groups: pd.Series, order: list[str], k: int) -> list[str]:
    """Whole patients, in order, while a class they hold has fewer than ``k`` images; at least two patients.

    A class with fewer than ``k`` training images gets all of them (the row records how many)."""
    per_patient = train.assign(group=groups, label=train["label"].astype(str)).groupby("group")["label"].value_counts()
    counts: dict[str, int] = {}
    kept = []
    for patient in order:
        held = per_patient[patient]
        if any(counts.get(label, 0) < k for label in held.index) or len(kept) < MIN_PATIENTS:
            kept.append(patient)
            for label, n in held.items():
                counts[label] = counts.get(label, 0) + int(n)
    return kept
