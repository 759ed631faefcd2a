"""The fixed evaluation protocol: one place for the split, validation and seed rules.

Every cell of a suite is scored under the same protocol, and the protocol is
written into the run directory, so scores in one leaderboard are comparable.
"""
from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from .api import ConfigError

SEED_EFFECTS = {
    "changes": ["head initialisation", "validation fold", "augmentation sampling"],
    "fixed": ["test split (unless resample_split is true)", "embeddings of real images"],
}


@dataclass
class Protocol:
    """Split and repetition rules; defaults are seed 000's (Algorithm 1, Table 4.1)."""

    test_fraction: float = 0.2
    tau: int = 3
    split_seed: int = 0
    val_folds: int = 8
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    resample_split: bool = False
    split_file: str | None = None
    split_column: str | None = None
    dummy_draws: int = 1000

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> "Protocol":
        raw = dict(raw or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"protocol has no setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if isinstance(raw.get("seeds"), int):
            raw["seeds"] = list(range(raw["seeds"]))
        proto = cls(**raw)
        if not 0 < proto.test_fraction < 1:
            raise ConfigError(f"protocol.test_fraction must be between 0 and 1, got {proto.test_fraction}")
        if not proto.seeds:
            raise ConfigError("protocol.seeds is empty; give a count (e.g. 3) or a list of seeds")
        return proto

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seed_effects": SEED_EFFECTS}

    def identity(self) -> dict[str, Any]:
        """What changes a cell's scores (seeds are a separate column, not part of the cell)."""
        ident = asdict(self)
        ident.pop("seeds")
        return ident

    def split_seed_for(self, seed: int) -> int:
        return self.split_seed + seed if self.resample_split else self.split_seed


def label_aware_patient_split(bins: pd.DataFrame, test_fraction: float = 0.2, tau: int = 3, seed: int = 0) -> list[str]:
    """Seed 000 Algorithm 1: test patients covering every (task, class) bin with support >= tau.

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


def validation_fold(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Patient-grouped stratified hold-out (one fold of StratifiedGroupKFold) for model selection.

    Returns boolean masks (fit, val). The seed chooses the shuffle, hence the fold.
    """
    n_groups = len(np.unique(groups))
    k = min(n_folds, n_groups)
    if k < 2:
        raise ConfigError(f"the training part has {n_groups} patient(s); at least 2 are needed for validation")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class" is expected on tiny data
        _, val_idx = next(iter(splitter.split(np.zeros(len(y)), y, groups)))
    val = np.zeros(len(y), dtype=bool)
    val[val_idx] = True
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
