"""The embedding pipeline: decode, batch, call the backbone for cache misses only.

One planner (:func:`cache_misses`) with one chunk size serves the runner (which sends each chunk to an
executor as a task), :func:`embed_paths` (which embeds the chunks here) and so the tests and benchmarks.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from skinbench.api import Backbone, PluginError
from skinbench.execution.cache import EmbeddingCache
from skinbench.hashing import file_digest
from skinbench.record.identity import embedding_key
from skinbench.images import load_rgb

PATH_CHUNK = 256
"""Images per embedding task: enough to keep a GPU's batches and a backbone's DataLoader workers full,
small enough that a killed run or a lost worker redoes little, and that a cluster has many tasks to spread."""

Chunk = list[tuple[str, str]]
"""(path, content digest) of images to embed together."""


def cache_misses(paths: Sequence[str], digest: Callable[[str], str], known: dict[str, np.ndarray],
                 cache: EmbeddingCache | None, key: str) -> list[Chunk]:
    """The images of ``paths`` still to embed, in chunks of :data:`PATH_CHUNK`, each image content once.

    ``known`` maps digests to embeddings already in memory; vectors found in the cache are added to it,
    so only true misses come back."""
    todo: dict[str, str] = {}
    for path in paths:
        content = digest(path)
        if content in known or content in todo:
            continue
        vector = cache.get(key, content) if cache is not None else None
        if vector is not None:
            known[content] = vector
        else:
            todo[content] = path
    items = [(path, content) for content, path in todo.items()]
    return [items[i:i + PATH_CHUNK] for i in range(0, len(items), PATH_CHUNK)]


def embed_paths(backbone: Backbone, paths: Sequence[str], cache: EmbeddingCache | None = None,
                progress: bool = True) -> np.ndarray:
    """Embeddings for ``paths`` (rows aligned) in this process; only images missing from the cache reach
    the backbone, in the runner's chunks (:func:`cache_misses`)."""
    key = embedding_key(backbone)
    if cache is not None:
        cache.write_identity(key, backbone.identity.record())
    found: dict[str, np.ndarray] = {}
    chunks = cache_misses(paths, file_digest, found, cache, key)
    bar = tqdm(total=sum(map(len, chunks)), desc=f"embed {backbone.name}", unit="img",
               disable=not progress or not chunks, leave=False)
    for chunk in chunks:
        vectors = embed_chunk(backbone, [path for path, _ in chunk])
        for (_, content), vector in zip(chunk, vectors):
            found[content] = vector
            if cache is not None:
                cache.put(key, content, vector)
        bar.update(len(chunk))
    bar.close()
    return np.stack([found[file_digest(p)] for p in paths]) if len(paths) else np.zeros((0, 0), np.float32)


def embed_chunk(backbone: Backbone, paths: list[str]) -> np.ndarray:
    """The backbone's own path hook when it has one, else decoded images through ``embed``."""
    vectors = backbone.embed_paths(paths)
    if vectors is None:
        vectors = backbone.embed([load_rgb(p) for p in paths])
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(paths):
        raise PluginError(f"backbone '{backbone.name}' returned embeddings of shape {vectors.shape} "
                          f"for {len(paths)} images; expected ({len(paths)}, dim)")
    return vectors
