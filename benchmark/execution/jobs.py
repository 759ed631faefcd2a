"""The units of work an executor runs: augment one training part, embed images, fit one head.

Each is a plain function of its arguments with a picklable result, so the in-process
executor and a Dask worker run exactly the same code. Workers never touch the run
directory or the caches: they return rows, embeddings, predictions and generated image
bytes, and the driver stores them. Only the input images must be readable by the workers.
"""
from __future__ import annotations

import os
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from skinbench.api import Augmenter, Backbone, ClassNames, Head, Part, PluginError, SkinbenchError, Task
from skinbench.execution.embedding import embed_chunk
from skinbench.metrics import score

SCRATCH = Path(tempfile.gettempdir()) / "skinbench-worker"
"""Where a worker without the driver's cache keeps generated and received images."""


class TaskFailure(SkinbenchError):
    """A plugin failed inside a task; carries who failed, why, and the worker's traceback."""

    def __init__(self, kind: str, label: str, message: str, trace: str = ""):
        super().__init__(f"{kind} '{label}' failed: {message}")
        self.kind, self.label, self.message, self.trace = kind, label, message, trace

    def __reduce__(self):  # rebuilt on the driver from its fields
        return TaskFailure, (self.kind, self.label, self.message, self.trace)


def _guard(kind: str, plugin: Any, fn, *args):
    try:
        return fn(*args)
    except TaskFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - one failing plugin fails only its cells
        raise TaskFailure(kind, getattr(plugin, "label", str(plugin)), f"{exc.__class__.__name__}: {exc}",
                          traceback.format_exc()) from None


@dataclass
class AugmentResult:
    """Synthetic training rows, and (when the worker cannot write the driver's cache) their image bytes
    keyed by path relative to the augmentation folder."""

    rows: pd.DataFrame
    files: dict[str, bytes] | None = None


def augment_task(augmenter: Augmenter, fit: pd.DataFrame, task: Task, seed: int, workdir: str | None) -> AugmentResult:
    """Run one augmenter on the fit part. ``workdir`` None: a worker-local folder, images returned as bytes."""
    def run() -> AugmentResult:
        folder = Path(workdir) if workdir is not None else SCRATCH / "augmented"
        new = augmenter.augment(fit.copy(), task, seed, folder)
        if new is None or new.empty:
            return AugmentResult(fit.iloc[0:0].assign(source=pd.Series(dtype=str), synthetic=pd.Series(dtype=bool)))
        new = new.reset_index(drop=True)
        if workdir is not None:
            return AugmentResult(new)
        files = {}
        for path in new["image"].astype(str):
            relative = Path(path).resolve().relative_to(folder.resolve())
            files[relative.as_posix()] = Path(path).read_bytes()
        return AugmentResult(new.assign(image=[Path(p).resolve().relative_to(folder.resolve()).as_posix()
                                               for p in new["image"].astype(str)]), files)
    return _guard("augmenter", augmenter, run)


def embed_task(backbone: Backbone, paths: list[str], blobs: dict[str, bytes] | None = None) -> np.ndarray:
    """Embeddings of ``paths`` (rows aligned); ``blobs`` holds the bytes of images the worker cannot read."""
    def run() -> np.ndarray:
        from skinbench.devices import cpu_threads, machine_cores

        local = materialize(paths, blobs)
        # A CPU convolution's sums depend on the thread count (EfficientNet-Lite0 embeddings moved by up to
        # 5.7e-6 between 2 threads in-process and the 1 a Dask worker process gets), so a cached embedding
        # would depend on the executor: every executor embeds at the machine's count. The price is
        # oversubscription while several local workers embed.
        with cpu_threads(machine_cores(), backbone.identity.artefacts.get("device_type", "cpu")):
            return embed_chunk(backbone, local)
    return _guard("backbone", backbone, run)


@dataclass
class HeadResult:
    metrics: dict[str, float]
    labels: np.ndarray
    proba: np.ndarray
    seconds: float


def head_task(head: Head, backbone: Backbone | None, parts: tuple[Part, Part, Part], n_classes: int,
              ordinal: bool, seed: int, blobs: dict[str, bytes] | None = None,
              classes: ClassNames | None = None) -> HeadResult:
    """Fit one head on (train, val), predict and score the test part. A head that ``needs_text`` gets the
    backbone and the task's ``classes`` too.

    BLAS runs on one thread here, in every executor: results then do not depend on how many
    cores a worker has, so the Dask executor reproduces the in-process run bit for bit."""
    def run() -> HeadResult:
        start = time.perf_counter()
        train, val, test = (_materialized_part(p, blobs) for p in parts) if blobs else parts
        with threadpool_limits(limits=1):
            text = {"classes": classes} if head.needs_text else {}
            head.fit(train, val, n_classes, seed, backbone=backbone if head.needs_images or head.needs_text else None,
                     **text)
            prediction = head.predict(test)
        check_prediction(prediction, len(test), n_classes)
        labels = np.asarray(prediction.labels)
        proba = np.asarray(prediction.proba, dtype=np.float64)
        metrics = score(test.y, labels, proba, n_classes, ordinal)
        return HeadResult(metrics, labels, proba, time.perf_counter() - start)
    return _guard("head", head, run)


def check_prediction(prediction: Any, n: int, k: int) -> None:
    proba = np.asarray(prediction.proba)
    if proba.shape != (n, k) or np.asarray(prediction.labels).shape != (n,):
        raise PluginError(f"predicted shapes proba {proba.shape}, labels {np.asarray(prediction.labels).shape}; "
                          f"expected ({n}, {k}) and ({n},)")
    if not np.isfinite(proba).all():
        raise PluginError("predicted probabilities contain NaN or inf")


def materialize(paths: list[str], blobs: dict[str, bytes] | None) -> list[str]:
    """Paths the worker can open: images sent as bytes are written once into the worker's scratch folder."""
    if not blobs:
        return list(paths)
    out = []
    for path in paths:
        if path not in blobs:
            out.append(path)
            continue
        target = SCRATCH / "received" / path.lstrip("/")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(blobs[path])
            os.replace(tmp, target)
        out.append(str(target))
    return out


def _materialized_part(part: Part, blobs: dict[str, bytes]) -> Part:
    return Part(paths=materialize(part.paths, blobs), y=part.y, groups=part.groups, x=part.x)
