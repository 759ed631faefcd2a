"""The units the runner plans: a fold's parts, and the cells of one fold and augmenter that share them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from skinbench.api import SkinbenchError, Task
from skinbench.data.curves import patient_order, subsample
from skinbench.data.preflight import LoadedDataset
from skinbench.data.protocol import Protocol, validation_fold
from skinbench.vocabulary import FULL_DATA


@dataclass
class Fold:
    """One (dataset, task, split, outer fold, seed, curve point, draw): the fit, validation and test parts every
    cell of it shares.

    Under holdout ``outer`` is 0; under cv the test part is outer fold ``outer`` of repeat ``split``, and
    the validation fold, the augmentation sources and every fitted statistic come from the other folds.
    Along a learning curve (``point`` other than 'all') they come from the point's subsample of those."""

    ds: LoadedDataset
    task: Task
    split: int
    outer: int
    seed: int
    fit: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    train: pd.DataFrame  # fit + val: the dummies' prior
    point: str = FULL_DATA
    draw: int = 0
    patients: int = 0  # training patients (fit + val)
    per_class: str = ""  # training images per class, as JSON

    @property
    def key(self) -> tuple:
        return (self.ds.label, self.task.name, self.split, self.outer, self.seed, self.point, self.draw)


@dataclass
class Group:
    """The cells of one fold and augmenter: they share one augmentation and, per backbone, one set of parts."""

    fold: Fold
    augmenter: int
    heads: dict[int, list[int]]  # backbone index -> head indices still to run
    synthetic: pd.DataFrame | None = None
    files: dict[str, bytes] | None = None
    error: str | None = None
    waiting: dict[int, int] = field(default_factory=dict)  # backbone index -> embedding tasks outstanding


def make_fold(ds: LoadedDataset, task: Task, split: int, outer: int, seed: int, protocol: Protocol,
              point: str = FULL_DATA, draw: int = 0) -> Fold:
    """Cut one task into test (this split's test patients) and fit/validation (the rest, grouped by patient);
    at a learning-curve point, fit/validation come from that point's subsample of the rest."""
    samples = task.samples.reset_index(drop=True).assign(group=lambda d: d["group"].astype(str))
    is_test = samples["group"].isin(ds.splits[(split, outer)]).to_numpy()
    train, test = samples[~is_test].reset_index(drop=True), samples[is_test].reset_index(drop=True)
    order = (patient_order(train, protocol.split_seed_for(split), outer, draw) if point != FULL_DATA
             else sorted(train["group"].unique()))
    kept = subsample(train, point, order)
    train = kept.rows
    fit_mask, val_mask = validation_fold(task.encode(train["label"]), train["group"].to_numpy(), protocol.val_folds, seed)
    return Fold(ds, task, split, outer, seed, train[fit_mask].reset_index(drop=True),
                train[val_mask].reset_index(drop=True), test, train, point, draw, kept.patients,
                kept.per_class_text())


def plugin_digest(plugin: Any) -> str:
    """A plugin's resolved identity digest; dummies are named by a plain string."""
    return plugin if isinstance(plugin, str) else plugin.identity.digest


def describe(exc: BaseException) -> str:
    """A task failure as stored in a row: a skinbench error's own message, otherwise the exception type too."""
    if isinstance(exc, SkinbenchError):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}"
