"""The grid runner: dataset, split, augment (train only), embed, fit head, score, store.

Every (task × split × outer fold × seed × augmenter × backbone × head) is one row of the results store.
The preflight (:mod:`skinbench.data.preflight`) checks and resolves everything first; the runner
then walks the grid as tasks (augment a training part, embed a chunk of images, fit one head)
on an executor — this process by default, or a Dask cluster — while this process, the
driver, owns the results store and the caches. Finished rows are skipped on a rerun; a
plugin failing in one task fails only the cells that need it.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from skinbench.api import (
    Augmenter,
    Backbone,
    ClassNames,
    ConfigError,
    Head,
    Part,
    SkinbenchError,
    Task,
)
from skinbench.atomic import atomic_write
from skinbench.baselines import DUMMIES, dummy_scores
from skinbench.execution.cache import EmbeddingCache
from skinbench.execution.embedding import cache_misses
from skinbench.execution.executors import make_executor
from skinbench.hashing import file_digest
from skinbench.record.identity import cell_id, embedding_key
from skinbench.data.protocol import leakage_problems
from skinbench.record.rundir import write_run_header
from skinbench.record.store import ROW_KEY, ResultsStore, prediction_frame
from skinbench.configuration.suite import Executor as ExecutorConfig
from skinbench.configuration.suite import Suite
from skinbench.execution.progress import Progress
from skinbench.execution.folds import Fold, Group, describe, make_fold, plugin_digest
from skinbench.execution.jobs import AugmentResult, TaskFailure, augment_task, embed_task, head_task
from skinbench.data.preflight import LoadedDataset, Preflight, preflight

logger = logging.getLogger("skinbench.execution.runner")


def run_suite(suite: Suite | dict | str | Path | None, out_dir: str | Path, cache_dir: str | Path | None = None,
              progress: bool = False, extra_plugins: Iterable[Any] = (), executor: ExecutorConfig | None = None,
              cells: Iterable[str] | None = None) -> pd.DataFrame:
    """Run every pending cell of ``suite`` into ``out_dir`` and return all stored result rows.

    Everything that can be checked before computing is checked first (:func:`skinbench.data.preflight.preflight`);
    nothing in ``out_dir`` is touched until it passes. ``cells`` restricts the run to those cell ids."""
    return run_checked(preflight(suite, out_dir, cache_dir, extra_plugins), progress, executor, cells)


def run_checked(checked: Preflight, progress: bool = False, executor: ExecutorConfig | None = None,
                cells: Iterable[str] | None = None) -> pd.DataFrame:
    """Run a suite that passed the preflight."""
    store = ResultsStore(checked.out_dir)
    store.dir.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(store.dir / ".skinbench.lock", timeout=0):  # two drivers appending to one store would interleave
            for problem in store.prepare():
                logger.warning("%s", problem)
            write_run_header(store, checked)
            grid = Grid(checked, store, progress, set(cells) if cells is not None else None)
            engine = make_executor(executor or checked.suite.executor)
            if engine.dashboard and progress:
                print(f"dask dashboard: {engine.dashboard}")
            try:
                grid.run(engine)
            except BaseException:
                engine.cancel_all()  # Ctrl-C or a fatal store error: finished cells are already stored
                raise
            finally:
                engine.close()
                store.export()
    except Timeout:
        raise ConfigError(f"{store.dir}: another skinbench run is writing there; wait for it or choose another --out") from None
    return store.read()


class Grid:
    """The driver: plans pending cells, submits tasks, stores what comes back."""

    def __init__(self, checked: Preflight, store: ResultsStore, progress: bool, only: set[str] | None = None):
        self.checked, self.store, self.progress, self.only = checked, store, progress, only
        self.plugins, self.protocol = checked.plugins, checked.suite.protocol
        self.backbones: list[Backbone] = self.plugins["backbones"]
        self.augmenters: list[Augmenter] = self.plugins["augmenters"]
        self.heads: list[Head] = self.plugins["heads"]
        self.cache = EmbeddingCache(checked.cache_root)
        self.augment_dir = checked.cache_root / "augmented"
        self.done = store.finished()
        self.memo: list[dict[str, np.ndarray]] = [{} for _ in self.backbones]  # digest -> embedding
        self.failed_digests: list[dict[str, str]] = [{} for _ in self.backbones]
        self.digests: dict[str, str] = {}  # path -> sha256 for this run: one stat per image, not one per use
        self.real_outstanding = [0] * len(self.backbones)
        self.cache_warned = False

    # ---------------------------------------------------------------- identities
    def cell_id(self, ds: LoadedDataset, task: Task, backbone: Any, augmenter: Any, head: Any) -> str:
        return cell_id(ds.key, task.name, backbone, augmenter, head, self.protocol.identity())

    def pending(self, key: str, split: int, outer: int, seed: int, point: str, draw: int) -> bool:
        return (key, seed, split, outer, point, draw) not in self.done and (self.only is None or key in self.only)

    # ---------------------------------------------------------------- planning
    def folds(self) -> Iterable[tuple[LoadedDataset, Task, int, int, int, str, int]]:
        for ds in self.checked.datasets:
            for task in ds.tasks:
                for split, outer, seed in self.protocol.runs():
                    for point, draw in self.protocol.curve_runs():
                        yield ds, task, split, outer, seed, point, draw

    def plan(self) -> tuple[list[Group], list[tuple[Fold, str]]]:
        """Groups of pending model cells, and pending dummy cells, fold by fold."""
        groups, dummies = [], []
        for ds, task, *run in self.folds():
            fold = None
            for kind in DUMMIES:
                if self.pending(self.cell_id(ds, task, "-", "-", f"dummy:{kind}"), *run):
                    fold = fold or make_fold(ds, task, *run[:3], self.protocol, *run[3:])
                    dummies.append((fold, kind))
            for ai, augmenter in enumerate(self.augmenters):
                heads = {bi: [hi for hi, h in enumerate(self.heads)
                              if self.pending(self.cell_id(ds, task, b, augmenter, h), *run)]
                         for bi, b in enumerate(self.backbones)}
                heads = {bi: his for bi, his in heads.items() if his}
                if heads:
                    fold = fold or make_fold(ds, task, *run[:3], self.protocol, *run[3:])
                    groups.append(Group(fold, ai, heads))
        return groups, dummies

    # ---------------------------------------------------------------- the driver loop
    def run(self, executor) -> None:
        groups, dummies = self.plan()
        total = len(dummies) + sum(len(h) for g in groups for h in g.heads.values())
        self.bars = Progress(self.progress, total, augmenting=len(groups))
        self.executor = executor
        self.shared = {id(p): executor.share(p) for p in (*self.backbones, *self.augmenters, *self.heads)}
        self.tags: dict[Any, tuple] = {}
        for group in groups:  # first: a cluster augments while this process reads the embedding cache
            self.submit(("augment", group), augment_task, self.shared[id(self.augmenters[group.augmenter])],
                        group.fold.fit, group.fold.task, group.fold.seed,
                        None if executor.portable else str(self.augment_dir))
        self.submit_real_embeddings(groups)
        waiting = list(groups)
        for future in executor.completed():
            tag = self.tags.pop(future)
            try:
                result, error = future.result(), None
            except Exception as exc:  # noqa: BLE001 - a failed task fails its cells, nothing else
                result, error = None, describe(exc)
            getattr(self, f"on_{tag[0]}")(tag, result, error)
            waiting = [g for g in waiting if not self.dispatch_ready(g)]
            if dummies and any(pending[0] == "head" for pending in self.tags.values()):
                self.run_dummies(dummies)  # this process scores chance while the heads train
        self.run_dummies(dummies)
        self.bars.close()

    def run_dummies(self, dummies: list[tuple[Fold, str]]) -> None:
        """Score the chance baselines still listed, in order, and empty the list."""
        for fold, kind in dummies:
            self.run_dummy(fold, kind)
        dummies.clear()

    def submit(self, tag: tuple, fn, *args, resources: dict | None = None) -> None:
        self.tags[self.executor.submit(fn, *args, resources=resources)] = tag

    # ---------------------------------------------------------------- embeddings
    def submit_real_embeddings(self, groups: list[Group]) -> None:
        """One task per chunk of real images a backbone has not embedded yet (cache misses only)."""
        for bi, backbone in enumerate(self.backbones):
            paths = {p: None for g in groups if bi in g.heads and self.embedding_heads(g.heads[bi])
                     for p in g.fold.task.samples["image"].astype(str)}
            self.real_outstanding[bi] += self.submit_embeddings(bi, list(paths), ("embed", bi, None), None)

    def submit_embeddings(self, bi: int, paths: list[str], tag: tuple, blobs: dict[str, bytes] | None) -> int:
        """Load cached embeddings into memory and submit the rest in chunks; returns the number of tasks."""
        backbone, key = self.backbones[bi], embedding_key(self.backbones[bi])
        self.cache.write_identity(key, backbone.identity.record())
        chunks = cache_misses(paths, self.digest, self.memo[bi], self.cache, key)
        gpu = {"GPU": 1} if backbone.identity.artefacts.get("device_type") == "cuda" else None
        self.bars.to_embed(sum(map(len, chunks)))
        for chunk in chunks:
            chunk_paths = [p for p, _ in chunk]
            sent = {p: blobs[p] for p in chunk_paths} if blobs else None
            self.submit((*tag[:2], [d for _, d in chunk], tag[2]), embed_task, self.shared[id(backbone)],
                        chunk_paths, sent, resources=gpu)
        return len(chunks)

    def digest(self, path: str) -> str:
        found = self.digests.get(path)
        if found is None:
            found = self.digests[path] = file_digest(path)
        return found

    def on_embed(self, tag: tuple, vectors: np.ndarray | None, error: str | None) -> None:
        _, bi, digests, group = tag
        self.bars.embedded(len(digests))
        key = embedding_key(self.backbones[bi])
        for i, digest in enumerate(digests):
            if error:
                self.failed_digests[bi][digest] = error
                continue
            self.memo[bi][digest] = vectors[i]
            self.cache_put(key, digest, vectors[i])
        if group is None:
            self.real_outstanding[bi] -= 1
        else:
            group.waiting[bi] -= 1

    def cache_put(self, key: str, digest: str, vector: np.ndarray) -> None:
        """The cache only saves time: a full or read-only cache warns once and the run goes on."""
        try:
            self.cache.put(key, digest, vector)
        except OSError as exc:
            if not self.cache_warned:
                self.cache_warned = True
                logger.warning("embedding cache %s cannot be written (%s); embeddings of this run are not cached",
                               self.cache.dir, exc.strerror or exc)

    def embedding_heads(self, head_indices: list[int]) -> bool:
        return any(not self.heads[hi].needs_images for hi in head_indices)

    # ---------------------------------------------------------------- augmentation
    def on_augment(self, tag: tuple, result: AugmentResult | None, error: str | None) -> None:
        group: Group = tag[1]
        self.bars.augmented(0 if error else len(result.rows))
        if error:
            group.error = error
            return
        try:
            group.synthetic = self.accept_synthetic(group, result)
        except SkinbenchError as exc:
            group.error = str(exc)
            return
        for bi in group.heads:
            if self.embedding_heads(group.heads[bi]):
                paths = group.synthetic["image"].astype(str).tolist()
                group.waiting[bi] = self.submit_embeddings(bi, paths, ("embed", bi, group), group.files)

    def accept_synthetic(self, group: Group, result: AugmentResult) -> pd.DataFrame:
        """Store returned images in the driver's cache, log provenance, check leakage and labels."""
        augmenter, fold = self.augmenters[group.augmenter], group.fold
        new = result.rows
        if result.files is not None:
            for relative, data in result.files.items():
                target = self.augment_dir / relative
                if not target.exists():
                    atomic_write(target, lambda fh, data=data: fh.write(data))
            new = new.assign(image=[str(self.augment_dir / p) for p in new["image"]])
            group.files = {str(self.augment_dir / p): data for p, data in result.files.items()} \
                if self.executor.portable else None
        if new.empty:
            return new
        self.store.append_generation_log(new.assign(task=fold.task.name, augmenter=augmenter.label, seed=fold.seed))
        if "kept" in new:
            new = new[new["kept"].astype(bool)]
        leaks = leakage_problems(new, fold.fit, fold.val, fold.test)
        if leaks:
            raise TaskFailure("augmenter", augmenter.label, "leaked: " + "; ".join(leaks))
        unknown = sorted(set(new["label"]) - set(fold.task.classes), key=str)
        if unknown:
            raise TaskFailure("augmenter", augmenter.label, f"produced labels {unknown} outside {fold.task.classes}")
        return new.reset_index(drop=True)

    # ---------------------------------------------------------------- heads
    def dispatch_ready(self, group: Group) -> bool:
        """Submit the head tasks of every backbone whose inputs are complete; True when nothing is left."""
        if group.synthetic is None and group.error is None:
            return False
        for bi in list(group.heads):
            needs_embeddings = self.embedding_heads(group.heads[bi])
            if needs_embeddings and (self.real_outstanding[bi] or group.waiting.get(bi, 0)):
                continue
            self.submit_heads(group, bi, group.heads.pop(bi))
        return not group.heads

    def submit_heads(self, group: Group, bi: int, head_indices: list[int]) -> None:
        fold, backbone = group.fold, self.backbones[bi]
        train = pd.concat([fold.fit, group.synthetic], ignore_index=True) if group.error is None else fold.fit
        parts, embed_error = None, None
        for hi in head_indices:
            head = self.heads[hi]
            row = self.base_row(fold, backbone, self.augmenters[group.augmenter], head)
            row.update(n_train=len(fold.fit), n_synthetic=0 if group.error else len(group.synthetic), n_val=len(fold.val))
            if group.error:
                self.record(row, failure=group.error)
                continue
            if head.needs_images:
                frames = self.parts(bi, fold.task, (train, fold.val, fold.test), with_x=False)[0]
            else:
                if parts is None and embed_error is None:
                    parts, embed_error = self.parts(bi, fold.task, (train, fold.val, fold.test), with_x=True)
                    parts = self.executor.share(parts) if parts is not None else None
                if embed_error:
                    self.record(row, failure=embed_error)
                    continue
                frames = parts
            self.submit(("head", row, fold), head_task, self.shared[id(head)],
                        self.shared[id(backbone)] if head.needs_images or head.needs_text else None, frames,
                        fold.task.n_classes, fold.task.ordinal, fold.seed,
                        group.files if head.needs_images else None,
                        ClassNames.of(fold.task) if head.needs_text else None)

    def parts(self, bi: int, task: Task, frames: tuple[pd.DataFrame, ...], with_x: bool):
        """(train, val, test) parts, with embeddings from memory when ``with_x``; or the error that kept an image
        from being embedded."""
        out = []
        for frame in frames:
            paths = frame["image"].astype(str).tolist()
            x = None
            if with_x:
                digests = [self.digest(p) for p in paths]
                failed = [self.failed_digests[bi][d] for d in digests if d in self.failed_digests[bi]]
                if failed:
                    return None, failed[0]
                x = np.stack([self.memo[bi][d] for d in digests]) if digests else None
            out.append(Part(paths=paths, y=task.encode(frame["label"]), groups=frame["group"].astype(str).to_numpy(), x=x))
        if with_x:
            dim = next((p.x.shape[1] for p in out if p.x is not None), 0)
            for p in out:
                if p.x is None:
                    p.x = np.zeros((0, dim), np.float32)
        return tuple(out), None

    def on_head(self, tag: tuple, result: Any, error: str | None) -> None:
        _, row, fold = tag
        if error:
            return self.record(row, failure=error)
        predictions = prediction_frame(fold.task, fold.test, fold.task.encode(fold.test["label"]), result.labels,
                                       result.proba)
        self.write_predictions(row, predictions)
        self.record({**row, **result.metrics, "seconds": result.seconds})

    # ---------------------------------------------------------------- dummies and rows
    def run_dummy(self, fold: Fold, kind: str) -> None:
        start = time.perf_counter()
        task = fold.task
        y_train, y_test = task.encode(fold.train["label"]), task.encode(fold.test["label"])
        row = self.base_row(fold, "-", "-", f"dummy:{kind}")
        metrics, proba = dummy_scores(kind, y_train, y_test, task.n_classes, task.ordinal,
                                      self.protocol.dummy_draws, fold.seed)
        self.write_predictions(row, prediction_frame(task, fold.test, y_test, proba.argmax(1), proba))
        self.record({**row, **metrics, "n_train": len(y_train), "n_synthetic": 0, "n_val": 0,
                     "seconds": time.perf_counter() - start})

    def base_row(self, fold: Fold, backbone: Any, augmenter: Any, head: Any) -> dict:
        """The cell's identity and the fold's sizes, as stored with every row."""
        ds, task = fold.ds, fold.task
        row = {"cell_id": self.cell_id(ds, task, backbone, augmenter, head), "dataset": ds.label, "task": task.name,
               "seed": fold.seed, "split": fold.split, "fold": fold.outer, "point": fold.point, "draw": fold.draw,
               "scheme": self.protocol.scheme, "n_train_patients": fold.patients, "n_train_per_class": fold.per_class,
               "n_classes": task.n_classes,
               "ordinal": task.ordinal,
               "n_test": len(fold.test), "data_fingerprint": ds.fingerprint,
               "config": {"dataset": ds.plugin.config, **{kind: plugin_digest(p) for kind, p in
                          (("backbone", backbone), ("augmenter", augmenter), ("head", head))}}}
        for kind, plugin in (("backbone", backbone), ("augmenter", augmenter), ("head", head)):
            row[kind] = plugin if isinstance(plugin, str) else plugin.name
            row[f"{kind}_label"] = plugin if isinstance(plugin, str) else plugin.label
        return row

    def write_predictions(self, row: dict, frame: pd.DataFrame) -> None:
        try:
            self.store.write_predictions(row["cell_id"], row["seed"], row["split"], frame, row["fold"], row["point"],
                                         row["draw"])
        except OSError as exc:
            raise SkinbenchError(f"cannot write predictions into {self.store.predictions_dir} ({exc.strerror or exc}); "
                                 "free space or fix permissions, then rerun the same command to resume") from None

    def record(self, row: dict, failure: str | None = None) -> None:
        row = {**row, "status": "failed" if failure else "ok", "error": failure or ""}
        try:
            if failure:
                with open(self.store.dir / "errors.log", "a") as fh:
                    fh.write(f"--- cell {row['cell_id']} seed {row['seed']} split {row['split']} fold {row['fold']}\n"
                             f"{failure}\n")
            self.store.append(row)
        except OSError as exc:
            raise SkinbenchError(f"cannot write results into {self.store.dir} ({exc.strerror or exc}); "
                                 "free space or fix permissions, then rerun the same command to resume") from None
        self.done.add(tuple(row[k] for k in ROW_KEY))
        self.bars.cells.set_postfix_str(f"{row['task']}/{row['backbone_label']}/{row['augmenter_label']}/{row['head_label']}")
        self.bars.cells.update(1)
