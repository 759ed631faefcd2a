"""The preflight: everything that can be checked before computing, checked at once.

``skinbench validate`` runs it alone; ``skinbench run`` runs it first and touches nothing in
the run directory until it passes. It checks the suite's types and every plugin's
construction, resolves every plugin's identity (which hashes weights and fails fast when
weights, model folders or the hub are not reachable), reads every dataset row and image,
joins identical images across patients, draws the test splits, checks each class has
training images, and that the output and cache folders are writable with room to spare.
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from skinbench.api import (
    SAMPLE_COLUMNS,
    ConfigError,
    DataError,
    Dataset,
    Plugin,
    SkinbenchError,
    Task,
    did_you_mean,
)
from skinbench.data.groups import identical_image_groups
from skinbench.atomic import utf8_problem
from skinbench.hashing import config_hash, file_digest
from skinbench.images import image_problem
from skinbench.data.protocol import (
    Protocol,
    TestPart,
    label_aware_patient_split,
    patient_folds,
    split_from_column,
    split_from_file,
)
from skinbench.configuration.registry import Catalogue, load_catalogue
from skinbench.configuration.suite import Entry, Suite, load_suite
from skinbench.vocabulary import KINDS, MIN_TEST_IMAGES

MISSING_VALUES = frozenset({"", "nan", "none", "null", "na", "n/a"})
"""Label or patient values that mean "not filled in" (compared case-insensitively)."""
BYTES_PER_EMBEDDING = 8 * 1024
BYTES_PER_SYNTHETIC_IMAGE = 400 * 1024
"""Rough sizes for the free-space estimate: a 2048-d float32 vector, a 512 px PNG."""


@dataclass
class LoadedDataset:
    """One dataset after the preflight: its selected tasks, test parts and data fingerprint.

    ``splits`` maps every test part, (split, fold), to its test patients: one per split under
    holdout, one per (repeat, outer fold) under cv."""

    plugin: Dataset
    entry: Entry
    tasks: list[Task]
    splits: dict[TestPart, list[str]]
    fingerprint: str
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The dataset column of every result row: the plugin name plus its non-default parameters."""
        return self.plugin.label

    @property
    def key(self) -> str:
        """What a cell id knows of the dataset: its plugin identity and the fingerprint of its data."""
        return config_hash({"identity": self.plugin.identity.digest, "data": self.fingerprint})

    @property
    def display_name(self) -> str:
        return self.entry.label or self.plugin.label


@dataclass
class Preflight:
    """What the preflight resolved, ready for the runner."""

    suite: Suite
    catalogue: Catalogue
    plugins: dict[str, list[Plugin]]
    datasets: list[LoadedDataset]
    out_dir: Path | None
    cache_root: Path
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """Tasks, classes with train/test counts, patients and warnings, for the terminal."""
        lines = []
        protocol = self.suite.protocol
        for ds in self.datasets:
            patients = len(set().union(*(set(t.samples["group"]) for t in ds.tasks)))
            sizes = sorted({len(g) for g in ds.splits.values()})
            size = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
            parts = (f"{protocol.folds} outer folds of {size} patients × {protocol.cv_repeats} repeat(s)" if protocol.cv
                     else f"{len(ds.splits)} test split(s) of {size} patients")
            lines.append(f"dataset '{ds.display_name}': {len(ds.tasks)} task(s), {patients} patients, {parts}")
            first = next(iter(ds.splits.values()))
            for task in ds.tasks:
                counts = class_counts(task, first)
                classes = ", ".join(f"{c}: {n['train']}/{n['test']}" for c, n in counts.items())
                side = "class: train/test of outer fold 0" if protocol.cv else "class: train/test"
                lines.append(f"  task '{task.name}' ({len(task.samples)} images; {side}) {classes}")
        for backbone in self.plugins["backbones"]:
            lines.append(f"backbone '{backbone.label}': identity {backbone.identity.digest[:12]}")
        lines += [f"warning: {w}" for w in self.warnings]
        return lines


def preflight(suite: Suite | dict | str | Path | None, out_dir: str | Path | None = None,
              cache_dir: str | Path | None = None, extra_plugins: Iterable[Any] = ()) -> Preflight:
    """Check and resolve everything; raise one :class:`ConfigError` or :class:`DataError` listing every problem."""
    from skinbench.execution.cache import default_cache_dir

    suite = load_suite(suite)
    catalogue = load_catalogue(suite.block, suite.autoload, extra_plugins)
    plugins = instantiate(catalogue, suite)
    config_problems = list(catalogue.broken.values()) + resolve_identities(plugins)
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    config_problems += folder_problems(out_dir, "--out (the run directory)") + folder_problems(cache_root, "the cache folder")
    datasets, data_problems = [], []
    for plugin, entry in zip(plugins["datasets"], suite.datasets):
        try:
            datasets.append(load_dataset(plugin, entry, suite.protocol))
        except DataError as exc:
            data_problems += exc.problems
        except ConfigError as exc:
            config_problems.append(str(exc))
    if config_problems:
        raise ConfigError("the suite cannot run:\n" + "\n".join(f"- {p}" for p in config_problems + data_problems))
    if data_problems:
        raise DataError(data_problems)
    checked = Preflight(suite, catalogue, plugins, datasets, Path(out_dir) if out_dir else None, cache_root)
    checked.warnings = [w for ds in datasets for w in ds.warnings] + space_warnings(checked)
    return checked


def instantiate(catalogue: Catalogue, suite: Suite) -> dict[str, list[Plugin]]:
    """Create every plugin the suite names; all unknown names, bad parameters and crashing
    constructors are reported together, each naming its plugin."""
    plugins: dict[str, list] = {key: [] for key in KINDS}
    problems = []
    for key, kind in KINDS.items():
        for i, entry in enumerate(getattr(suite, key)):
            try:
                plugins[key].append(catalogue.create(kind, entry.name, entry.params))
            except SkinbenchError as exc:
                problems.append(str(exc))
            except Exception as exc:  # noqa: BLE001 - a third-party constructor may raise anything
                problems.append(f"{kind} '{entry.name}' ({key}[{i}]) failed to start: {exc.__class__.__name__}: {exc}")
    if problems:
        raise ConfigError("the suite cannot run:\n" + "\n".join(f"- {p}" for p in problems))
    for key in KINDS:
        labels = [p.label for p in plugins[key]]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"'{key}' names the same configuration twice: {labels}")
    return plugins


def resolve_identities(plugins: dict[str, list[Plugin]]) -> list[str]:
    """Resolve every plugin's identity once (hashing weights, checking model folders and the hub)."""
    problems = []
    for instances in plugins.values():
        for plugin in instances:
            try:
                plugin.identity  # noqa: B018 - resolving is the check
            except SkinbenchError as exc:
                problems.append(str(exc))
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{plugin.kind} '{plugin.label}': cannot resolve its weights or files "
                                f"({exc.__class__.__name__}: {exc})")
    return problems


def folder_problems(folder: str | Path | None, what: str) -> list[str]:
    """A folder that is a file, or cannot be created or written, is a problem before anything runs."""
    if folder is None:
        return []
    odd = utf8_problem(folder, what)
    if odd:
        return [odd]
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        return [f"{what} {path} is a file; give a folder"]
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return [f"{what} {path} cannot be created: {existing} is a file; choose another folder"]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [f"{what} {path} cannot be written ({existing} is not writable); choose another folder"]
    return []


def space_warnings(checked: Preflight) -> list[str]:
    """A rough estimate of the bytes a run adds, against the free space of its folders."""
    images = sum(len(t.samples) for ds in checked.datasets for t in ds.tasks)
    augmenting = sum(1 for a in checked.plugins["augmenters"] if a.name != "none")
    need = images * len(checked.plugins["backbones"]) * BYTES_PER_EMBEDDING * (1 + augmenting)
    need += images * augmenting * len(checked.suite.protocol.seeds) * BYTES_PER_SYNTHETIC_IMAGE
    existing = next(p for p in (checked.cache_root, *checked.cache_root.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < need:
        return [f"{checked.cache_root} has {free / 1e9:.1f} GB free; this run may need about {need / 1e9:.1f} GB"]
    return []


# ---------------------------------------------------------------- datasets


def load_dataset(plugin: Dataset, entry: Entry, protocol: Protocol) -> LoadedDataset:
    """Load and check every task, join identical images, draw the splits, select the tasks."""
    where = f"dataset '{plugin.label}'"
    tasks = _call(plugin.tasks, where, "failed to load")
    problems = [p for task in tasks for p in task_problems(task)]
    if not tasks:
        problems.append(f"{where} yielded no tasks")
    if problems:
        raise DataError(problems)
    table = _call(lambda: plugin.split_table(tasks), where, "failed to list its labelled images for the split")
    tasks, table, warnings = join_identical_images(tasks, table, where)
    splits, problems = choose_splits(where, table, tasks, protocol)
    tasks = select_tasks(tasks, entry.tasks, where)
    problems += [p for task in tasks for p in split_problems(task, splits, where, protocol)]
    if problems:
        raise DataError(problems)
    warnings += [w for task in tasks for w in left_out_warnings(task, where)]
    warnings += [w for task in tasks for w in class_warnings(task, splits, where, protocol)]
    return LoadedDataset(plugin, entry, tasks, splits, dataset_fingerprint(tasks, table), warnings)


def _call(fn, where: str, what: str):
    try:
        return fn()
    except SkinbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a dataset plugin crashing is reported with its name
        raise DataError([f"{where} {what}: {exc.__class__.__name__}: {exc}"]) from exc


def join_identical_images(tasks: list[Task], table: pd.DataFrame, where: str) -> tuple[list[Task], pd.DataFrame, list[str]]:
    """Patients that share an image file (same bytes) become one patient, in every task and the split table."""
    every = pd.concat([table[["image", "group"]], *(t.samples[["image", "group"]] for t in tasks)], ignore_index=True)
    joined, warnings = identical_image_groups(every["image"], every["group"].astype(str))
    return ([_with_groups(t, joined) for t in tasks], table.assign(group=table["group"].astype(str).map(joined)),
            [f"{where}: {w}" for w in warnings])


def _with_groups(task: Task, joined: dict[str, str]) -> Task:
    samples = task.samples.assign(group=task.samples["group"].astype(str).map(joined))
    return dataclasses.replace(task, samples=samples)


def select_tasks(tasks: list[Task], only: list[str] | None, where: str) -> list[Task]:
    if only is None:
        return tasks
    names = [t.name for t in tasks]
    missing = [t for t in only if t not in names]
    if missing:
        hint = did_you_mean(missing[0], names)
        raise ConfigError(f"{where} has no task(s) {missing}{hint}; its tasks: {names}")
    return [t for t in tasks if t.name in only]


def task_problems(task: Task) -> list[str]:
    """Missing columns, empty or degenerate tasks, missing or unknown labels and patient ids, unreadable images."""
    where = f"dataset '{task.dataset}', task '{task.name}'"
    df = task.samples
    missing = [c for c in SAMPLE_COLUMNS if c not in df]
    if missing:
        return [f"{where}: missing column(s) {missing}; present: {list(df.columns)}"]
    if df.empty:
        return [f"{where}: the task has no samples"]
    problems = []
    if len(task.classes) < 2:
        problems.append(f"{where}: declares {len(task.classes)} class(es) {task.classes}; a task needs at least 2")
    known = set(task.classes)
    for row, label in enumerate(df["label"]):
        if is_missing(label):
            problems.append(f"{task.where(row)}: label {label!r} looks like a missing value; leave the cell empty "
                            f"(such rows are left out of task '{task.name}') or give the real label")
        elif label not in known:
            problems.append(f"{task.where(row)}: label {label!r} is not one of the declared classes {task.classes}")
    empty_groups = [task.where(row) for row, g in enumerate(df["group"]) if is_missing(g)]
    if empty_groups:
        problems.append(f"{where}: the patient id is empty or NaN in {_rows(empty_groups)}; every image needs "
                        "the id of its patient (they would otherwise be pooled into one patient)")
    counts = df["label"].value_counts()
    problems += [f"{where}: class {c!r} has no samples; drop it from the classes or fix the label map"
                 for c in task.classes if counts.get(c, 0) == 0]
    patients = df["group"].astype(str).nunique()
    if patients < 3:
        problems.append(f"{where}: only {patients} patient(s); a patient-disjoint test split plus a validation fold "
                        "needs at least 3")
    for row, path in enumerate(df["image"]):
        why = utf8_problem(path, "the image path") or image_problem(path)
        if why:
            problems.append(f"{task.where(row)}: {path}: {why}")
    return problems


def is_missing(value: Any) -> bool:
    """None, NaN, and text such as '', 'NaN', 'nan', 'None' or 'NA' all mean "not filled in"."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_VALUES


def _rows(rows: list) -> str:
    shown = ", ".join(map(str, rows[:10]))
    return shown + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def choose_splits(where: str, table: pd.DataFrame, tasks: list[Task],
                  protocol: Protocol) -> tuple[dict[TestPart, list[str]], list[str]]:
    """Test patients per test part: outer folds (cv), a published split (file or column) or Algorithm 1."""
    table = table.assign(group=table["group"].astype(str))
    if protocol.cv:
        try:
            return {(r, f): fold for r in protocol.split_keys()
                    for f, fold in enumerate(patient_folds(table, protocol.folds, protocol.split_seed_for(r)))}, []
        except ConfigError as exc:
            return {}, [f"{where}: {exc}"]
    if protocol.split_column:
        samples = pd.concat([t.samples for t in tasks], ignore_index=True).assign(group=lambda d: d["group"].astype(str))
        test, problems = split_from_column(samples, protocol.split_column, where)
        return {(0, 0): test}, problems
    if protocol.split_file:
        test, problems = split_from_file(protocol.split_file, set(table["group"]))
        return {(0, 0): test}, problems
    return {(k, 0): label_aware_patient_split(table, protocol.test_fraction, protocol.tau, protocol.split_seed_for(k))
            for k in protocol.split_keys()}, []


def split_problems(task: Task, splits: dict[TestPart, list[str]], where: str, protocol: Protocol) -> list[str]:
    """Each test part must hold test images and leave at least two training patients (for the validation fold)."""
    problems = []
    groups = task.samples["group"].astype(str)
    fix = "lower protocol.folds or add patients" if protocol.cv else "raise test_fraction or add patients"
    for part, test in splits.items():
        is_test = groups.isin(test)
        train_patients = groups[~is_test].nunique()
        name = protocol.part_name(part)
        if not is_test.any():
            problems.append(f"{where}, task '{task.name}', {name}: no test image; {fix}")
        if train_patients < 2:
            problems.append(f"{where}, task '{task.name}', {name}: {train_patients} training patient(s); "
                            "the validation fold needs at least 2")
    return problems


def left_out_warnings(task: Task, where: str) -> list[str]:
    """One line per rule that left rows out of the task (an empty label, a missing image...), with the first rows."""
    lines = []
    for reason, (count, first) in task.left_out.items():
        shown = f": {', '.join(first)}{' …' if count > len(first) else ''}" if first else ""
        lines.append(f"{where}, task '{task.name}': {count} row(s) left out ({reason}){shown}")
    return lines


def class_counts(task: Task, test_groups: list[str]) -> dict[Any, dict[str, int]]:
    """Images per class on each side of one split."""
    is_test = task.samples["group"].astype(str).isin(test_groups)
    return {c: {"train": int(((task.samples["label"] == c) & ~is_test).sum()),
                "test": int(((task.samples["label"] == c) & is_test).sum())} for c in task.classes}


def class_warnings(task: Task, splits: dict[TestPart, list[str]], where: str, protocol: Protocol) -> list[str]:
    """Algorithm 1 can put every image of a rare class into the test part: say so.

    Under cv a fold's handful of test images of a class is expected (every patient is tested once,
    and the verdicts pool the folds), so only a class without training images is worth a warning."""
    warnings = []
    for part, test in splits.items():
        for cls, n in class_counts(task, test).items():
            split = f", {protocol.part_name(part)}" if len(splits) > 1 else ""
            if n["train"] == 0:
                warnings.append(f"{where}, task '{task.name}'{split}: class {cls!r} has no training image "
                                f"({n['test']} in test); no head can learn it")
            elif n["test"] < MIN_TEST_IMAGES and not protocol.cv:
                warnings.append(f"{where}, task '{task.name}'{split}: class {cls!r} has {n['test']} test image(s); "
                                "its F1 is mostly noise")
    return warnings


def dataset_fingerprint(tasks: list[Task], table: pd.DataFrame) -> str:
    """Hash of every sample's image bytes, label, stratum and patient, and of the split table.

    Part of each cell id, so corrected data makes new cells instead of reusing stale ones."""
    described = {}
    for task in tasks:
        samples = task.samples
        strata = samples["stratum"] if "stratum" in samples else samples["label"]
        rows = sorted(zip((file_digest(p) for p in samples["image"]), samples["label"].astype(str),
                          strata.astype(str), samples["group"].astype(str)))
        described[task.name] = {"classes": [str(c) for c in task.classes], "ordinal": task.ordinal, "rows": rows}
    described["_split_table"] = sorted(zip((file_digest(p) for p in table["image"]), table["task"].astype(str),
                                           table["stratum"].astype(str), table["group"].astype(str)))
    return config_hash(described)


def train_test_counts(task: Task, test_groups: list[str]) -> np.ndarray:
    """(n_train, n_test) images of one task for one split."""
    is_test = task.samples["group"].astype(str).isin(test_groups)
    return np.array([int((~is_test).sum()), int(is_test.sum())])
