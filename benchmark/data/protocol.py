"""The fixed evaluation protocol: one place for the split, validation and seed rules.

Every cell of a suite is scored under the same protocol, and the protocol is
written into the run directory, so scores in one leaderboard are comparable.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from skinbench.api import ConfigError
from skinbench.data.curves import curve_points
from skinbench.vocabulary import FULL_DATA

SEED_EFFECTS = {
    "changes": ["head initialisation", "validation fold", "augmentation sampling"],
    "fixed": ["test split or outer folds (one per repeat; per seed with resample_split)", "embeddings of real images"],
}
CV_ONLY = ("folds", "cv_repeats")
HOLDOUT_ONLY = ("test_fraction", "tau", "repeats", "resample_split", "split_file", "split_column")
CURVE_FIELDS = ("train_fractions", "shots", "curve_draws")
"""Learning-curve settings: each point and draw is a row key (like seeds), not part of a cell's identity."""
NEAR_DUPLICATE_FIELDS = ("join_near_duplicates", "near_duplicate_threshold")
"""Change the split only when joining is on: outside the identity otherwise, so existing cell ids stay."""

TestPart = tuple[int, int]
"""Which patients one evaluation tests on: (split, fold). Holdout: (split, 0); cv: (repeat, outer fold)."""


class Protocol(BaseModel):
    """Split and repetition rules; the defaults are the thesis's (Algorithm 1, Table 4.1).

    ``scheme: holdout`` (the default) tests on one patient-disjoint split. ``repeats`` > 1 draws
    that many (Algorithm 1 with split seeds ``split_seed``, ``split_seed + 1``, ...) and evaluates
    every seed on each, so the leaderboard's intervals include split-to-split variation.
    ``resample_split`` is the older spelling of one split per seed.

    ``scheme: cv`` puts every patient into one of ``folds`` outer folds (:func:`patient_folds`) and
    tests each fold on a model trained on the others, so every patient is predicted once and the
    verdicts use all of them. ``cv_repeats`` redraws the folds with split seeds ``split_seed + r``.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    test_fraction: float = Field(0.2, gt=0, lt=1)
    tau: int = Field(3, ge=1)
    split_seed: int = 0
    val_folds: int = Field(8, ge=2)
    seeds: Annotated[list[int], WithJsonSchema({"anyOf": [
        {"type": "integer", "minimum": 1, "description": "a count: seeds 0..n-1"},
        {"type": "array", "items": {"type": "integer"}, "minItems": 1}]})] = Field(
        default_factory=lambda: [0, 1, 2], min_length=1)
    repeats: int = Field(1, ge=1)
    resample_split: bool = False
    split_file: str | None = None
    split_column: str | None = None
    dummy_draws: int = Field(1000, ge=1)
    scheme: Literal["holdout", "cv"] = "holdout"
    folds: int = Field(5, ge=2)
    cv_repeats: int = Field(1, ge=1)
    train_fractions: list[Annotated[float, Field(gt=0, le=1)]] = Field(default_factory=list)
    shots: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list)
    curve_draws: int = Field(5, ge=1)
    join_near_duplicates: bool = False
    """Join patients whose images are near-duplicates (perceptual hash within the threshold), like identical files."""
    near_duplicate_threshold: int = Field(10, ge=0, le=64)
    """Largest Hamming distance between two 64-bit pHashes that counts as a near-duplicate (audit and join)."""

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_count(cls, value: Any) -> Any:
        """``seeds: 3`` means seeds 0, 1, 2."""
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ValueError("a seed count must be at least 1")
            return list(range(value))
        return value

    @model_validator(mode="after")
    def _one_way_to_split(self) -> "Protocol":
        published = [k for k in ("split_file", "split_column") if getattr(self, k)]
        resampled = [k for k, on in (("repeats", self.repeats > 1), ("resample_split", self.resample_split)) if on]
        if len(published) > 1 or (published and resampled) or len(resampled) > 1:
            raise ValueError(f"choose one way to split: {' and '.join(published + resampled)} were both given")
        if self.scheme == "cv" and (published or resampled):
            raise ValueError(f"scheme 'cv' draws its own folds; {' and '.join(published + resampled)} "
                             "belong to the holdout scheme (use cv_repeats to redraw the folds)")
        return self

    @property
    def cv(self) -> bool:
        return self.scheme == "cv"

    def as_dict(self) -> dict[str, Any]:
        """The protocol as recorded in ``suite.yaml`` and the split files: the active scheme's fields."""
        return {**self.model_dump(exclude=set(self._other_scheme())), "seed_effects": SEED_EFFECTS}

    def scheme_record(self) -> dict[str, Any]:
        """The scheme, K and R, as the receipt records them."""
        return {"scheme": self.scheme, **({"folds": self.folds, "cv_repeats": self.cv_repeats} if self.cv else
                                          {"splits": len(self.split_keys())}), "description": self.describe()}

    def identity(self) -> dict[str, Any]:
        """What changes a cell's scores (seeds, splits and folds are columns, not part of the cell).

        Only the active scheme's fields count: a holdout cell's identity is what it was before the
        cv scheme existed, and a cv cell never shares an id with a holdout cell. The near-duplicate
        settings count only when ``join_near_duplicates`` is on (then the threshold moves patients);
        off, the threshold changes the audit's report and no score."""
        holdout_as_before = () if self.cv else ("scheme",)
        unjoined_as_before = () if self.join_near_duplicates else NEAR_DUPLICATE_FIELDS
        return self.model_dump(exclude={"seeds", "repeats", "cv_repeats", *CURVE_FIELDS, *self._other_scheme(),
                                        *holdout_as_before, *unjoined_as_before})

    def _other_scheme(self) -> tuple[str, ...]:
        """The fields that only the scheme not in use reads."""
        return HOLDOUT_ONLY if self.cv else CV_ONLY

    def split_keys(self) -> list[int]:
        """The split index of every evaluation: one split unless ``repeats`` or ``resample_split`` draw more
        (under cv: one per ``cv_repeats``)."""
        if self.cv:
            return list(range(self.cv_repeats))
        if self.resample_split:
            return list(range(len(self.seeds)))
        return list(range(self.repeats))

    def fold_keys(self) -> list[int]:
        """The outer folds of one split: ``range(folds)`` under cv, ``[0]`` (the one test part) under holdout."""
        return list(range(self.folds)) if self.cv else [0]

    def test_parts(self) -> list[TestPart]:
        return [(split, fold) for split in self.split_keys() for fold in self.fold_keys()]

    def runs(self) -> list[tuple[int, int, int]]:
        """Every (split, fold, seed) evaluated: with ``resample_split`` each seed has its own split."""
        if self.resample_split:
            return [(split, 0, seed) for split, seed in enumerate(self.seeds)]
        return [(split, fold, seed) for split, fold in self.test_parts() for seed in self.seeds]

    def curve_runs(self) -> list[tuple[str, int]]:
        """Every (point, draw) a fold is trained at: all training patients (draw 0), then each learning-curve
        point (:mod:`skinbench.data.curves`) with ``curve_draws`` subsamples."""
        return [(FULL_DATA, 0)] + [(point, draw) for point in curve_points(self.train_fractions, self.shots)
                               for draw in range(self.curve_draws)]

    def part_name(self, part: TestPart) -> str:
        """How messages name one test part: 'split 1' or 'repeat 0, fold 3'."""
        split, fold = part
        return f"repeat {split}, fold {fold}" if self.cv else f"split {split}"

    def describe(self) -> str:
        """One line for leaderboards and the site."""
        if self.cv:
            repeats = f" × {self.cv_repeats} repeats" if self.cv_repeats > 1 else ""
            return f"patient-grouped {self.folds}-fold cross-validation{repeats}"
        repeats = f" × {len(self.split_keys())} splits" if len(self.split_keys()) > 1 else ""
        return f"holdout of {self.test_fraction:.0%} of patients{repeats}"

    def split_seed_for(self, split: int) -> int:
        return self.split_seed + split


def label_aware_patient_split(bins: pd.DataFrame, test_fraction: float = 0.2, tau: int = 3, seed: int = 0) -> list[str]:
    """The thesis's Algorithm 1: test patients covering every (task, class) bin with support >= tau.

    ``bins`` has one row per labelled image with columns ``group``, ``task`` and ``stratum``.
    Greedy cover of the required bins (ties broken by a seeded shuffle), then a seeded
    random fill up to ``max(1, ceil(test_fraction * n_patients))``. Returns test group ids.
    """
    rng = np.random.default_rng(seed)
    keys = list(zip(bins["task"].astype(str), bins["stratum"].astype(str)))
    global_bins = Counter(keys)
    patient_bins: dict[str, set] = defaultdict(set)
    for group, key in zip(bins["group"].astype(str), keys):
        patient_bins[group].add(key)
    required = {b for b, n in global_bins.items() if n >= tau}
    patients = sorted(patient_bins)
    order = [patients[i] for i in rng.permutation(len(patients))]
    test: list[str] = []
    unmet = set(required)
    while unmet:
        gains = [len(patient_bins[p] & unmet) for p in order]
        best = int(np.argmax(gains)) if gains else -1
        if best < 0 or gains[best] <= 0:
            break
        chosen = order.pop(best)
        test.append(chosen)
        unmet -= patient_bins[chosen]
    target = max(1, math.ceil(test_fraction * len(patients)))
    rest = [order[i] for i in rng.permutation(len(order))]
    test.extend(rest[: max(0, target - len(test))])
    return sorted(test)


def patient_folds(bins: pd.DataFrame, n_folds: int, seed: int) -> list[list[str]]:
    """Outer cross-validation folds: every patient in exactly one of ``n_folds`` folds. Returns group ids per fold.

    ``bins`` is the dataset's split table (one row per labelled image and task, columns ``group``,
    ``task``, ``stratum``), the table Algorithm 1 covers, so the folds belong to the data and do not
    move with the tasks or label maps a suite selects. Each row's joint stratum is its (task, class)
    bin, and scikit-learn's StratifiedGroupKFold spreads every bin across the folds as evenly as whole
    patients allow: the cross-validation form of Algorithm 1's guarantee that rare classes reach the
    test part (a bin with at least ``n_folds`` patients is in every fold's test part). Why not a
    greedy of our own: StratifiedGroupKFold is the kept, tested implementation of exactly this rule.
    """
    groups = bins["group"].astype(str).to_numpy()
    strata = (bins["task"].astype(str) + "\x00" + bins["stratum"].astype(str)).to_numpy()
    n_patients = len(np.unique(groups))
    if n_patients < n_folds:
        raise ConfigError(f"{n_patients} patient(s) cannot fill {n_folds} folds; lower protocol.folds")
    from skinbench.data.grouped_folds import grouped_test_folds

    return [sorted(set(groups[test])) for test in grouped_test_folds(strata, groups, n_folds, seed)]


def validation_fold(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Patient-grouped stratified hold-out (one fold of StratifiedGroupKFold) for model selection.

    Returns boolean masks (fit, val). The seed chooses the shuffle, hence the fold.
    """
    n_groups = len(np.unique(groups))
    k = min(n_folds, n_groups)
    if k < 2:
        raise ConfigError(f"the training part has {n_groups} patient(s); at least 2 are needed for validation")
    val = np.zeros(len(y), dtype=bool)
    largest_class = int(np.bincount(y).max())
    if largest_class < 2:  # a tiny learning-curve subsample: one image per class, nothing to stratify
        patients = np.unique(groups)
        val[groups == patients[np.random.default_rng(seed).integers(len(patients))]] = True
        return ~val, val
    from skinbench.data.grouped_folds import grouped_test_folds

    val[grouped_test_folds(y, groups, min(k, largest_class), seed)[0]] = True  # scikit-learn needs k ≤ a class's size
    return ~val, val


def split_from_column(samples: pd.DataFrame, column: str, where: str) -> tuple[list[str], list[str]]:
    """Test groups from a published split column (values 'train'/'test'); problems if a patient straddles it."""
    if column not in samples:
        return [], [f"{where}: split column '{column}' is missing; present columns: {', '.join(samples.columns)}"]
    values = samples[column].astype(str).str.lower()
    bad = sorted(set(values) - {"train", "test"})
    problems = [f"{where}: split column '{column}' has value(s) {bad}; use 'train' or 'test'"] if bad else []
    sides = values.groupby(samples["group"].astype(str)).agg(lambda s: set(s))
    problems += [
        f"{where}: patient '{g}' has rows in both train and test; a split must keep each patient on one side"
        for g, s in sides.items() if len(s) > 1
    ]
    return sorted(g for g, s in sides.items() if s == {"test"}), problems


def split_from_file(path: str, groups: set[str]) -> tuple[list[str], list[str]]:
    """Test groups from a split file: JSON with ``test_groups`` (as skinbench writes) or one id per line."""
    import json
    from pathlib import Path

    file = Path(path)
    if not file.exists():
        return [], [f"{path}: split file is missing"]
    text = file.read_text()
    try:
        ids = [str(g) for g in json.loads(text)["test_groups"]]
    except (ValueError, KeyError, TypeError):
        ids = [line.strip() for line in text.splitlines() if line.strip()]
    unknown = sorted(set(ids) - groups)
    problems = [f"{path}: test group(s) {unknown[:10]} are not patients of this dataset"] if unknown else []
    return sorted(set(ids)), problems


def leakage_problems(new: pd.DataFrame, fit: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    """Synthetic rows must come from fit images and keep their source's patient id."""
    problems = []
    if "source" not in new:
        return ["synthetic rows have no 'source' column"]
    source_group = dict(zip(fit["image"].astype(str), fit["group"].astype(str)))
    outside = sorted(set(new["source"].astype(str)) - set(source_group))
    if outside:
        problems.append(f"{len(outside)} source image(s) are not in the training part, e.g. {outside[0]}")
    wrong = [s for s, g in zip(new["source"].astype(str), new["group"].astype(str)) if s in source_group and source_group[s] != g]
    if wrong:
        problems.append(f"{len(wrong)} synthetic row(s) do not carry their source's patient id, e.g. from {wrong[0]}")
    held_out = set(val["group"].astype(str)) | set(test["group"].astype(str))
    crossing = sorted(set(new["group"].astype(str)) & held_out)
    if crossing:
        problems.append(f"synthetic rows carry held-out patient id(s) {crossing[:5]}")
    return problems
