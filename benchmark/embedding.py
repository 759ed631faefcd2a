"""The embedding pipeline: decode, batch, call the backbone for cache misses only."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from .api import Backbone, PluginError
from .cache import EmbeddingCache
from .hashing import file_digest
from .identity import embedding_key
from .images import load_rgb

PATH_CHUNK = 1024
"""Images handed at once to a backbone's ``embed_paths`` hook: large enough for its DataLoader
workers to stay busy, small enough that a killed run loses little uncached work."""


def embed_paths(backbone: Backbone, paths: Sequence[str], cache: EmbeddingCache | None = None,
                batch_size: int = 32, progress: bool = True) -> np.ndarray:
    """Embeddings for ``paths`` (rows aligned); only images missing from the cache reach the backbone."""
    identity = backbone.identity.record()
    key = embedding_key(backbone)
    digests = [file_digest(p) for p in paths]
    found: dict[str, np.ndarray] = {}
    if cache is not None:
        cache.write_identity(key, identity)
        for d in set(digests):
            vec = cache.get(key, d)
            if vec is not None:
                found[d] = vec
    todo: dict[str, str] = {}
    for p, d in zip(paths, digests):
        if d not in found and d not in todo:
            todo[d] = p
    items = list(todo.items())
    uses_paths = type(backbone).embed_paths is not Backbone.embed_paths
    step = PATH_CHUNK if uses_paths else batch_size
    bar = tqdm(total=len(items), desc=f"embed {backbone.name}", unit="img", disable=not progress or not items, leave=False)
    for start in range(0, len(items), step):
        chunk = items[start:start + step]
        vectors = embed_chunk(backbone, [p for _, p in chunk])
        for (d, _), vec in zip(chunk, vectors):
            found[d] = vec
            if cache is not None:
                cache.put(key, d, vec)
        bar.update(len(chunk))
    bar.close()
    return np.stack([found[d] for d in digests]) if digests else np.zeros((0, 0), np.float32)


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
