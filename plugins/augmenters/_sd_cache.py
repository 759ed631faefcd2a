"""What a Stable Diffusion image is (its job, seed and model identity) and where it is cached.

Every image has a seed derived from (run seed, source content, repeat index) and a cache key
derived from the augmenter's identity (:func:`skinbench.record.identity.augmentation_key`), so a rerun
calls no pipeline and a fully cached rerun does not even load the model. An entry is a PNG and
a JSON sidecar (settings, trimmed prompts, quality metrics), written on background threads while
the next batch generates; the sidecar is written last, so an entry with both files is complete.
"""
from __future__ import annotations

import hashlib
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image
from skinbench.sdk import atomic_write, atomic_write_json, ConfigError, hub_revision

from ._sd_prompts import Prompt


@dataclass
class Job:
    """One synthetic image to produce (or find in the cache)."""

    row: int                     # position of the source row in the training frame
    source: str
    source_digest: str
    label: Any
    index: int                   # how many earlier synthetic images came from this source in this run
    image_seed: int
    prompt: Prompt
    batch: int = 0               # jobs of one planned batch share one pipeline call and its settings
    settings: dict = field(default_factory=dict)
    key: str = ""
    used: Prompt | None = None   # the prompts after trimming to the tokenizer's limit


def image_seed(run_seed: int, source_digest: str, index: int) -> int:
    """Seed of one generated image: reproducible per run, distinct per source and repeat."""
    raw = hashlib.sha256(f"{run_seed}:{source_digest}:{index}".encode()).digest()
    return int.from_bytes(raw[:8], "big") & (2**63 - 1)


def entry_paths(folder: Path, key: str) -> tuple[Path, Path]:
    """(PNG, JSON sidecar) of one cached image."""
    base = folder / key[:2] / key
    return base.with_suffix(".png"), base.with_suffix(".json")


def is_cached(folder: Path, key: str) -> bool:
    return all(path.exists() for path in entry_paths(folder, key))


def write_entry(folder: Path, key: str, pixels: np.ndarray, record: dict) -> None:
    """The image (H, W, 3 uint8) as PNG, then its sidecar."""
    png, meta = entry_paths(folder, key)
    atomic_write(png, lambda fh: Image.fromarray(pixels).save(fh, format="PNG"))
    atomic_write_json(meta, record, indent=None)


class BackgroundWriter:
    """A small thread pool for checking and writing finished batches, so metrics and PNG encoding
    (torch and zlib release the GIL) overlap the next batch's generation. At most ``max_pending``
    tasks wait, bounding memory; leaving the ``with`` block waits for all of them and raises the
    first error."""

    def __init__(self, workers: int = 2, max_pending: int = 2):
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="skinbench-sd-write")
        self._pending: deque[Future] = deque()

    def submit(self, fn: Callable, *args: Any) -> None:
        self._pending.append(self._pool.submit(fn, *args))
        while len(self._pending) > self.max_pending:
            self._pending.popleft().result()

    def __enter__(self) -> "BackgroundWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            while self._pending:  # even after a failed batch: what was generated is kept
                error = self._pending.popleft().exception()
                if error is not None and exc_info[0] is None:
                    raise error
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def model_identity(model: str, revision: str | None, plugin: str) -> dict:
    """What identifies the weights: a content fingerprint of a local folder, or the hub id and the
    commit its revision resolves to (from the local HF cache, or the hub when reachable)."""
    path = Path(model).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        return {"fingerprint": _folder_fingerprint(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns)
                                                         for p in files), str(path))}
    if model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or "\\" in model:
        raise ConfigError(f"{plugin}: model folder {path} does not exist; point 'model' at a diffusers "
                          "model folder (save_pretrained) or give a Hugging Face id such as "
                          "'stable-diffusion-v1-5/stable-diffusion-v1-5'")
    hint = (f"'{model}' is not a local folder either: point 'model' at a diffusers model folder "
            "(save_pretrained), or run once where the hub is reachable")
    return {"hub_id": model, "revision": hub_revision(model, plugin, revision, hint=hint)}


@lru_cache(maxsize=64)
def _folder_fingerprint(files: tuple, root: str) -> str:
    """Hash of each file's relative path, size, first and last MiB: cheap on multi-GB weights,
    yet different for any re-trained or re-initialised checkpoint."""
    h = hashlib.sha256()
    for name, size, _mtime in files:
        h.update(f"{Path(name).relative_to(root)}:{size}".encode())
        with open(name, "rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read())
    return h.hexdigest()[:24]
