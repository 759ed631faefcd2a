"""The preflight: everything that can be checked before computing, checked at once.

``skinbench validate`` runs it alone; ``skinbench run`` runs it first and touches nothing in
the run directory until it passes. It checks the suite's types and every plugin's
construction, resolves every plugin's identity (which hashes weights and fails fast when
weights, model folders or the hub are not reachable), reads every dataset row and image,
joins identical images across patients, finds near-duplicate images across patients (the audit's
fast part; joined too with ``protocol.join_near_duplicates``), draws the test splits, checks each class has
training images, and that the output and cache folders are writable with room to spare.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from skinbench.api import (
    ClassNames,
    ConfigError,
    DataError,
    Dataset,
    Plugin,
    SkinbenchError,
    Task,
    TextBackbone,
    did_you_mean,
)
from skinbench.data.checks import class_counts, class_warnings, left_out_warnings, split_problems, task_problems
from skinbench.data.audit.near_duplicates import (
    cross_patient_pairs,
    near_duplicate_groups,
    pair_warning,
    with_split_sides,
)
from skinbench.data.groups import identical_image_groups
from skinbench.atomic import utf8_problem
from skinbench.hashing import config_hash, file_digests, use_digest_store
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
from skinbench.vocabulary import KINDS

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
    near_duplicates: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Near-duplicate image pairs under different patients (before any join), with their split sides."""

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
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    use_digest_store(cache_root)  # before identities: a weights file is then hashed once, not on every run
    config_problems = list(catalogue.broken.values()) + resolve_identities(plugins)
    config_problems += folder_problems(out_dir, "--out (the run directory)") + folder_problems(cache_root, "the cache folder")
    datasets, data_problems = [], []
    for plugin, entry in zip(plugins["datasets"], suite.datasets):
        try:
            datasets.append(load_dataset(plugin, entry, suite.protocol, cache_root))
        except DataError as exc:
            data_problems += exc.problems
        except ConfigError as exc:
            config_problems.append(str(exc))
    config_problems += text_head_problems(plugins, datasets)
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


def text_head_problems(plugins: dict[str, list[Plugin]], datasets: list[LoadedDataset]) -> list[str]:
    """Heads that read class names need a backbone with text embeddings, and prompts for every task."""
    problems = []
    for head in (h for h in plugins["heads"] if h.needs_text):
        for backbone in plugins["backbones"]:
            if not isinstance(backbone, TextBackbone):
                problems.append(f"head '{head.label}' needs text embeddings, which backbone '{backbone.label}' cannot "
                                "give (it has no embed_text); pair it with a vision-language backbone (open-clip, "
                                "hf-clip), or run the other backbones in a second suite and merge both run "
                                "directories in the leaderboard")
        problems += [p for ds in datasets for task in ds.tasks for p in head.class_problems(ClassNames.of(task))]
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


def load_dataset(plugin: Dataset, entry: Entry, protocol: Protocol, cache_root: Path | None = None) -> LoadedDataset:
    """Load and check every task, join identical images (and near-duplicates when asked), draw the splits,
    select the tasks."""
    where = f"dataset '{plugin.label}'"
    tasks = _call(plugin.tasks, where, "failed to load")
    problems = [p for task in tasks for p in task_problems(task)]
    if not tasks:
        problems.append(f"{where} yielded no tasks")
    if problems:
        raise DataError(problems)
    table = _call(lambda: plugin.split_table(tasks), where, "failed to list its labelled images for the split")
    tasks, table, warnings = join_identical_images(tasks, table, where)
    tasks, table, pairs = join_near_duplicates(tasks, table, protocol, cache_root)
    splits, problems = choose_splits(where, table, tasks, protocol)
    tasks = select_tasks(tasks, entry.tasks, where)
    problems += [p for task in tasks for p in split_problems(task, splits, where, protocol)]
    if problems:
        raise DataError(problems)
    warnings += [w for task in tasks for w in left_out_warnings(task, where)]
    warnings += [w for task in tasks for w in class_warnings(task, splits, where, protocol)]
    pairs = with_split_sides(pairs, splits, protocol)
    warnings += pair_warning(pairs, where, protocol)
    return LoadedDataset(plugin, entry, tasks, splits, dataset_fingerprint(tasks, table), warnings, pairs)


def _call(fn, where: str, what: str):
    try:
        return fn()
    except SkinbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a dataset plugin crashing is reported with its name
        raise DataError([f"{where} {what}: {exc.__class__.__name__}: {exc}"]) from exc


def join_identical_images(tasks: list[Task], table: pd.DataFrame, where: str) -> tuple[list[Task], pd.DataFrame, list[str]]:
    """Patients that share an image file (same bytes) become one patient, in every task and the split table."""
    every = _every_image(tasks, table)
    joined, warnings = identical_image_groups(every["image"], every["group"].astype(str))
    return ([_with_groups(t, joined) for t in tasks], table.assign(group=table["group"].astype(str).map(joined)),
            [f"{where}: {w}" for w in warnings])


def join_near_duplicates(tasks: list[Task], table: pd.DataFrame, protocol: Protocol,
                         cache_root: Path | None) -> tuple[list[Task], pd.DataFrame, pd.DataFrame]:
    """The audit's fast part: near-duplicate pairs across patients (pHash), joined into one patient each
    when ``protocol.join_near_duplicates`` is on, through the same join as identical images."""
    from skinbench.execution.cache import default_cache_dir

    every = _every_image(tasks, table)
    pairs = cross_patient_pairs(every["image"], every["group"], protocol.near_duplicate_threshold,
                                cache_root if cache_root is not None else default_cache_dir())
    if not protocol.join_near_duplicates or pairs.empty:
        return tasks, table, pairs
    joined = near_duplicate_groups(every["image"], every["group"], pairs)
    pairs = pairs.assign(joined_as=pairs["patient_a"].map(joined))
    return [_with_groups(t, joined) for t in tasks], table.assign(group=table["group"].astype(str).map(joined)), pairs


def _every_image(tasks: list[Task], table: pd.DataFrame) -> pd.DataFrame:
    """Image and patient of every row of the split table and of every task."""
    return pd.concat([table[["image", "group"]], *(t.samples[["image", "group"]] for t in tasks)], ignore_index=True)


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


def dataset_fingerprint(tasks: list[Task], table: pd.DataFrame) -> str:
    """Hash of every sample's image bytes, label, stratum and patient, and of the split table.

    Part of each cell id, so corrected data makes new cells instead of reusing stale ones."""
    described = {}
    for task in tasks:
        samples = task.samples
        strata = samples["stratum"] if "stratum" in samples else samples["label"]
        rows = sorted(zip(file_digests(samples["image"]), samples["label"].astype(str),
                          strata.astype(str), samples["group"].astype(str)))
        described[task.name] = {"classes": [str(c) for c in task.classes], "ordinal": task.ordinal, "rows": rows}
    described["_split_table"] = sorted(zip(file_digests(table["image"]), table["task"].astype(str),
                                           table["stratum"].astype(str), table["group"].astype(str)))
    return config_hash(described)
