"""The grid runner: dataset, split, augment (train only), embed, fit head, score, store.

Every (task × backbone × augmenter × head × seed) is one row of ``results.csv``.
Finished rows are skipped on a rerun; a plugin failing in one cell is recorded
with its error and the rest of the grid goes on.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import yaml
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from .api import (
    SAMPLE_COLUMNS,
    SUBGROUP_COLUMNS,
    Augmenter,
    Backbone,
    ConfigError,
    DataError,
    Dataset,
    Head,
    Part,
    PluginError,
    Task,
)
from .atomic import atomic_write
from .baselines import DUMMIES, dummy_scores
from .cache import EmbeddingCache, default_cache_dir
from .embedding import embed_paths
from .hashing import config_hash, file_digest
from .images import image_problem
from .metrics import score
from .protocol import (
    Protocol,
    label_aware_patient_split,
    split_from_column,
    split_from_file,
    validation_fold,
)
from .receipt import receipt
from .registry import Catalogue, load_catalogue
from .store import ResultsStore
from .suite import KINDS, Suite, load_suite, resolved


@dataclass
class LoadedDataset:
    plugin: Dataset
    tasks: list[Task]
    test_groups: dict[int, list[str]]  # seed -> test patients


def run_suite(suite: Suite | dict | str | Path | None, out_dir: str | Path, cache_dir: str | Path | None = None,
              progress: bool = False, extra_plugins: Iterable[Any] = ()) -> pd.DataFrame:
    """Run every pending cell of ``suite`` into ``out_dir`` and return all stored result rows.

    Everything that can be checked before computing is checked first (suite, plugins,
    every dataset row and image, the split); nothing in ``out_dir`` is touched until it passes.
    """
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    catalogue = load_catalogue(suite.block, suite.autoload, extra_plugins)
    plugins = instantiate(catalogue, suite)
    datasets = [load_dataset(ds, entry.tasks, suite.protocol) for ds, entry in zip(plugins["datasets"], suite.datasets)]
    store = ResultsStore(out_dir)
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    store.dir.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(store.dir / ".skinbench.lock", timeout=0):  # two runs appending to one results.csv would interleave
            write_run_header(store, suite, plugins, datasets)
            Grid(store, plugins, datasets, suite.protocol, EmbeddingCache(cache_root), cache_root, progress).run()
    except Timeout:
        raise ConfigError(f"{store.dir}: another skinbench run is writing there; wait for it or choose another --out") from None
    return store.read()


def instantiate(catalogue: Catalogue, suite: Suite) -> dict[str, list]:
    """Create every plugin the suite names; all unknown names and parameters are reported together."""
    plugins: dict[str, list] = {key: [] for key in KINDS}
    problems = []
    for key, kind in KINDS.items():
        for entry in getattr(suite, key):
            try:
                plugins[key].append(catalogue.create(kind, entry.name, entry.params))
            except ConfigError as exc:
                problems.append(str(exc))
    if problems:
        raise ConfigError("the suite cannot run:\n" + "\n".join(f"- {p}" for p in problems))
    for key in KINDS:
        labels = [p.label for p in plugins[key]]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"'{key}' names the same configuration twice: {labels}")
    return plugins


def load_dataset(plugin: Dataset, only_tasks: list[str] | None, protocol: Protocol) -> LoadedDataset:
    """Load, validate and split one dataset; every problem is collected into one DataError."""
    try:
        tasks = plugin.tasks()
    except DataError:
        raise
    except Exception as exc:  # a dataset plugin crashing is reported with its name
        raise DataError([f"dataset '{plugin.name}' failed to load: {exc.__class__.__name__}: {exc}"]) from exc
    if only_tasks is not None:
        names = [t.name for t in tasks]
        missing = sorted(set(only_tasks) - set(names))
        if missing:
            raise ConfigError(f"dataset '{plugin.name}' has no task(s) {missing}; its tasks: {names}")
        tasks = [t for t in tasks if t.name in only_tasks]
    problems = [p for task in tasks for p in task_problems(task)]
    if not tasks:
        problems.append(f"dataset '{plugin.name}' yielded no tasks")
    if problems:
        raise DataError(problems)
    test_groups, problems = choose_splits(plugin.name, tasks, protocol)
    if problems:
        raise DataError(problems)
    return LoadedDataset(plugin, tasks, test_groups)


def task_problems(task: Task) -> list[str]:
    """Missing columns, empty task or class, unknown labels and unreadable images of one task."""
    where = f"dataset '{task.dataset}', task '{task.name}'"
    df = task.samples
    missing = [c for c in SAMPLE_COLUMNS if c not in df]
    if missing:
        return [f"{where}: missing column(s) {missing}; present: {list(df.columns)}"]
    if df.empty:
        return [f"{where}: the task has no samples"]
    problems = []
    known = set(task.classes)
    for row, label in zip(df.index, df["label"]):
        if label not in known:
            problems.append(f"{where}, row {row}: label {label!r} is not one of the declared classes {task.classes}")
    counts = df["label"].value_counts()
    problems += [f"{where}: class {c!r} has no samples; drop it from the classes or fix the label map"
                 for c in task.classes if counts.get(c, 0) == 0]
    for row, path in zip(df.index, df["image"]):
        why = image_problem(path)
        if why:
            problems.append(f"{path}: {why} ({where}, row {row})")
    return problems


def choose_splits(name: str, tasks: list[Task], protocol: Protocol) -> tuple[dict[int, list[str]], list[str]]:
    """Test patients per seed: a published split (file or column) or seed 000 Algorithm 1."""
    samples = pd.concat([t.samples.assign(task=t.name) for t in tasks], ignore_index=True)
    samples["group"] = samples["group"].astype(str)
    where = f"dataset '{name}'"
    if protocol.split_column:
        test, problems = split_from_column(samples, protocol.split_column, where)
        return {s: test for s in protocol.seeds}, problems
    if protocol.split_file:
        test, problems = split_from_file(protocol.split_file, set(samples["group"]))
        return {s: test for s in protocol.seeds}, problems
    bins = samples.assign(stratum=samples["stratum"] if "stratum" in samples else samples["label"])
    out = {s: label_aware_patient_split(bins, protocol.test_fraction, protocol.tau,
                                        protocol.split_seed + (i if protocol.resample_split else 0))
           for i, s in enumerate(protocol.seeds)}
    return out, []


def write_run_header(store: ResultsStore, suite: Suite, plugins: dict[str, list], datasets: list[LoadedDataset]) -> None:
    """The resolved suite, the receipt and the split files: what a reader needs to trust the rows."""
    text = yaml.safe_dump(resolved(suite, plugins), sort_keys=False)
    atomic_write(store.dir / "suite.yaml", lambda fh: fh.write(text.encode()))
    store.write_json("receipt.json", receipt())
    for ds in datasets:
        store.write_json(split_path(ds.plugin), split_record(ds, suite.protocol))


def split_path(plugin: Dataset) -> str:
    """``split/<name>.json``, with a hash of the parameters when they differ from the defaults,
    so two configurations of one dataset plugin in a suite keep separate split files."""
    suffix = "" if plugin.label == plugin.name else f"-{config_hash(plugin.identity.params, 8)}"
    return f"split/{plugin.name}{suffix}.json"


def split_record(ds: LoadedDataset, protocol: Protocol) -> dict:
    first = protocol.seeds[0]
    counts = {}
    for task in ds.tasks:
        side = np.where(task.samples["group"].astype(str).isin(ds.test_groups[first]), "test", "train")
        table = pd.crosstab(task.samples["label"].astype(str), side)
        counts[task.name] = {str(k): {c: int(v) for c, v in row.items()} for k, row in table.iterrows()}
    record = {"dataset": ds.plugin.label, "dataset_config": ds.plugin.config, "protocol": protocol.as_dict(),
              "test_groups": ds.test_groups[first], "class_counts_first_seed": counts}
    if protocol.resample_split:
        record["test_groups_per_seed"] = {str(s): g for s, g in ds.test_groups.items()}
    return record


class Grid:
    """Walks dataset → task → seed → augmenter → backbone → head, reusing work across cells."""

    def __init__(self, store: ResultsStore, plugins: dict[str, list], datasets: list[LoadedDataset],
                 protocol: Protocol, cache: EmbeddingCache, cache_root: Path, progress: bool):
        self.store, self.plugins, self.datasets, self.protocol = store, plugins, datasets, protocol
        self.cache, self.augment_dir = cache, cache_root / "augmented"
        self.done = store.finished()
        self.fingerprints = {d.plugin.label: dataset_fingerprint(d.tasks) for d in datasets}
        self.memo: dict[int, dict[str, np.ndarray]] = {}  # backbone index -> path -> embedding
        self.progress = progress

    def cell_id(self, ds: Dataset, task: Task, backbone: Any, augmenter: Any, head: Any) -> str:
        """Stable hash of everything that defines a cell; dummies pass names ('-', 'dummy:…') for plugins."""
        return config_hash({"dataset": ds.identity.digest, "task": task.name,
                            "data": self.fingerprints[ds.label], "backbone": _identity(backbone),
                            "augmenter": _identity(augmenter), "head": _identity(head),
                            "protocol": self.protocol.identity()})

    def planned(self) -> list[tuple[str, int]]:
        keys = []
        for ds in self.datasets:
            for task in ds.tasks:
                for seed in self.protocol.seeds:
                    keys += [(self.cell_id(ds.plugin, task, "-", "-", f"dummy:{d}"), seed) for d in DUMMIES]
                    keys += [(self.cell_id(ds.plugin, task, b, a, h), seed) for a in self.plugins["augmenters"]
                             for b in self.plugins["backbones"] for h in self.plugins["heads"]]
        return keys

    def run(self) -> None:
        pending = [k for k in self.planned() if k not in self.done]
        self.store.drop_failed(pending)
        self.bar = tqdm(total=len(pending), desc="cells", unit="cell", disable=not self.progress)
        for ds in self.datasets:
            for task in ds.tasks:
                for seed in self.protocol.seeds:
                    self.run_task_seed(ds, task, seed)
        self.bar.close()

    def run_task_seed(self, ds: LoadedDataset, task: Task, seed: int) -> None:
        samples = task.samples.reset_index(drop=True).assign(group=lambda d: d["group"].astype(str))
        is_test = samples["group"].isin(ds.test_groups[seed]).to_numpy()
        train, test = samples[~is_test].reset_index(drop=True), samples[is_test].reset_index(drop=True)
        y_train, y_test = task.encode(train["label"]), task.encode(test["label"])
        base = {"dataset": ds.plugin.label, "task": task.name, "seed": seed, "n_classes": task.n_classes,
                "ordinal": task.ordinal, "n_test": len(test)}
        self.run_dummies(ds, task, seed, base, y_train, y_test, test)
        fit_mask, val_mask = validation_fold(y_train, train["group"].to_numpy(), self.protocol.val_folds, seed)
        fit, val = train[fit_mask].reset_index(drop=True), train[val_mask].reset_index(drop=True)
        for augmenter in self.plugins["augmenters"]:
            cells = [(b, h) for b in self.plugins["backbones"] for h in self.plugins["heads"]
                     if (self.cell_id(ds.plugin, task, b, augmenter, h), seed) not in self.done]
            if not cells:
                continue
            try:
                synthetic = self.augment(augmenter, fit, val, test, task, seed)
                error = None
            except Exception as exc:  # noqa: BLE001 - one failing plugin fails only its cells
                synthetic, error = None, describe_failure("augmenter", augmenter, exc)
            for bi, backbone in enumerate(self.plugins["backbones"]):
                for head in self.plugins["heads"]:
                    if (backbone, head) not in cells:
                        continue
                    row = {**base, **self.identity_columns(ds.plugin, task, backbone, augmenter, head)}
                    if error:
                        self.record(row, failure=error)
                        continue
                    self.run_cell(row, bi, backbone, head, task, fit, val, test, synthetic, seed)

    def identity_columns(self, ds: Dataset, task: Task, backbone: Any, augmenter: Any, head: Any) -> dict:
        """The cell's identity as stored in ``results.csv``."""
        columns = {"cell_id": self.cell_id(ds, task, backbone, augmenter, head),
                   "data_fingerprint": self.fingerprints[ds.label],
                   "config": {"dataset": ds.config, **{k: _identity(p) for k, p in
                              (("backbone", backbone), ("augmenter", augmenter), ("head", head))}}}
        for kind, plugin in (("backbone", backbone), ("augmenter", augmenter), ("head", head)):
            columns[kind] = plugin if isinstance(plugin, str) else plugin.name
            columns[f"{kind}_label"] = plugin if isinstance(plugin, str) else plugin.label
        return columns

    def run_dummies(self, ds: LoadedDataset, task: Task, seed: int, base: dict, y_train: np.ndarray,
                    y_test: np.ndarray, test: pd.DataFrame) -> None:
        for kind in DUMMIES:
            row = {**base, **self.identity_columns(ds.plugin, task, "-", "-", f"dummy:{kind}")}
            if (row["cell_id"], seed) in self.done:
                continue
            start = time.perf_counter()
            metrics, proba = dummy_scores(kind, y_train, y_test, task.n_classes, task.ordinal,
                                          self.protocol.dummy_draws, seed)
            self.store.write_predictions(row["cell_id"], seed, prediction_frame(task, test, y_test, proba.argmax(1), proba))
            self.record({**row, **metrics, "n_train": len(y_train), "n_synthetic": 0, "n_val": 0,
                         "seconds": time.perf_counter() - start})

    def augment(self, augmenter: Augmenter, fit: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame,
                task: Task, seed: int) -> pd.DataFrame:
        """Synthetic rows from the fit part only, checked against leakage before use."""
        new = augmenter.augment(fit.copy(), task, seed, self.augment_dir)
        if new is None or new.empty:
            return fit.iloc[0:0].assign(synthetic=pd.Series(dtype=bool))
        new = new.copy()
        log = new.assign(task=task.name, augmenter=augmenter.label, seed=seed)
        self.store.append_generation_log(log)
        if "kept" in new:
            new = new[new["kept"].astype(bool)]
        leaks = leakage_problems(new, fit, val, test)
        if leaks:
            raise PluginError(f"augmenter '{augmenter.label}' leaked: " + "; ".join(leaks))
        unknown = sorted(set(new["label"]) - set(task.classes), key=str)
        if unknown:
            raise PluginError(f"augmenter '{augmenter.label}' produced labels {unknown} outside {task.classes}")
        return new.reset_index(drop=True)

    def run_cell(self, row: dict, bi: int, backbone: Backbone, head: Head, task: Task, fit: pd.DataFrame,
                 val: pd.DataFrame, test: pd.DataFrame, synthetic: pd.DataFrame, seed: int) -> None:
        start = time.perf_counter()
        train = pd.concat([fit, synthetic], ignore_index=True)
        row.update(n_train=len(fit), n_synthetic=len(synthetic), n_val=len(val))
        try:
            parts = [self.part(bi, backbone, head, frame, task) for frame in (train, val, test)]
        except Exception as exc:  # noqa: BLE001
            return self.record(row, failure=describe_failure("backbone", backbone, exc))
        try:
            head.fit(parts[0], parts[1], task.n_classes, seed, backbone=backbone if head.needs_images else None)
            prediction = head.predict(parts[2])
            check_prediction(prediction, len(test), task.n_classes)
        except Exception as exc:  # noqa: BLE001
            return self.record(row, failure=describe_failure("head", head, exc))
        metrics = score(parts[2].y, prediction.labels, prediction.proba, task.n_classes, task.ordinal)
        self.store.write_predictions(row["cell_id"], seed,
                                     prediction_frame(task, test, parts[2].y, prediction.labels, prediction.proba))
        self.record({**row, **metrics, "seconds": time.perf_counter() - start})

    def part(self, bi: int, backbone: Backbone, head: Head, frame: pd.DataFrame, task: Task) -> Part:
        paths = frame["image"].astype(str).tolist()
        x = None if head.needs_images else self.embeddings(bi, backbone, paths)
        return Part(paths=paths, y=task.encode(frame["label"]), groups=frame["group"].astype(str).to_numpy(), x=x)

    def embeddings(self, bi: int, backbone: Backbone, paths: list[str]) -> np.ndarray:
        memo = self.memo.setdefault(bi, {})
        missing = list(dict.fromkeys(p for p in paths if p not in memo))
        if missing:
            vectors = embed_paths(backbone, missing, self.cache, progress=self.progress)
            memo.update(zip(missing, vectors))
        if not paths:
            return np.zeros((0, next(iter(memo.values())).shape[0] if memo else 0), np.float32)
        return np.stack([memo[p] for p in paths])

    def record(self, row: dict, failure: str | None = None) -> None:
        if failure:
            row.update(status="failed", error=failure)
            with open(self.store.dir / "errors.log", "a") as fh:
                fh.write(f"--- cell {row['cell_id']} seed {row['seed']}\n{failure}\n{traceback.format_exc()}\n")
        else:
            row.update(status="ok", error="")
        self.store.append(row)
        self.done.add((row["cell_id"], row["seed"]))
        self.bar.set_postfix_str(f"{row['task']}/{row.get('backbone_label')}/{row.get('augmenter_label')}/{row['head_label']}")
        self.bar.update(1)


def dataset_fingerprint(tasks: list[Task]) -> str:
    """Hash of every sample's image bytes, label, stratum and patient in every task.

    Part of each cell id, so corrected data makes new cells instead of reusing stale ones. It
    covers all tasks because the test split is chosen from all of them together.
    """
    described = {}
    for task in tasks:
        samples = task.samples
        strata = samples["stratum"] if "stratum" in samples else samples["label"]
        rows = sorted(zip((file_digest(p) for p in samples["image"]), samples["label"].astype(str),
                          strata.astype(str), samples["group"].astype(str)))
        described[task.name] = {"classes": [str(c) for c in task.classes], "ordinal": task.ordinal, "rows": rows}
    return config_hash(described)


def _identity(plugin: Any) -> Any:
    return plugin if isinstance(plugin, str) else plugin.identity.digest


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


def check_prediction(prediction: Any, n: int, k: int) -> None:
    proba = np.asarray(prediction.proba)
    if proba.shape != (n, k) or np.asarray(prediction.labels).shape != (n,):
        raise PluginError(f"predicted shapes proba {proba.shape}, labels {np.asarray(prediction.labels).shape}; expected ({n}, {k}) and ({n},)")
    if not np.isfinite(proba).all():
        raise PluginError("predicted probabilities contain NaN or inf")


def prediction_frame(task: Task, test: pd.DataFrame, y: np.ndarray, labels: np.ndarray, proba: np.ndarray) -> pd.DataFrame:
    classes = [str(c) for c in task.classes]
    frame = pd.DataFrame({"image": test["image"].astype(str).to_numpy(), "group": test["group"].astype(str).to_numpy(),
                          "y_true": [classes[i] for i in y], "y_pred": [classes[i] for i in labels]})
    for i, c in enumerate(classes):
        frame[f"proba_{c}"] = proba[:, i]
    for column in SUBGROUP_COLUMNS:  # kept so subgroup metrics (e.g. by skin tone) need no rerun
        if column in test:
            frame[column] = test[column].astype(str).to_numpy()
    return frame


def describe_failure(kind: str, plugin: Any, exc: BaseException) -> str:
    return f"{kind} '{getattr(plugin, 'label', plugin)}' failed: {exc.__class__.__name__}: {exc}"
