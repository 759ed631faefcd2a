"""Content-addressed embedding cache.

An entry is found by the backbone's key (:func:`skinbench.record.identity.embedding_key`: its whole
resolved identity, so other weights, code, preprocessing or precision never share entries) and
the sha256 of the image file's bytes. Entries are ``.npy`` files (no pickling), written atomically.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from skinbench.atomic import atomic_write, atomic_write_json


def default_cache_dir() -> Path:
    return Path(os.environ.get("SKINBENCH_CACHE", Path.home() / ".cache" / "skinbench"))


class EmbeddingCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.dir = self.root / "embeddings"

    def _path(self, backbone_key: str, image_digest: str) -> Path:
        return self.dir / backbone_key / image_digest[:2] / f"{image_digest}.npy"

    def get(self, backbone_key: str, image_digest: str) -> np.ndarray | None:
        path = self._path(backbone_key, image_digest)
        try:
            return np.load(path, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError):
            return None

    def put(self, backbone_key: str, image_digest: str, vector: np.ndarray) -> None:
        atomic_write(self._path(backbone_key, image_digest),
                     lambda fh: np.save(fh, np.asarray(vector, dtype=np.float32), allow_pickle=False))

    def write_identity(self, backbone_key: str, identity: dict) -> None:
        """Keep a readable description next to each backbone's entries for ``cache info``."""
        target = self.dir / backbone_key / "identity.json"
        if not target.exists():
            atomic_write_json(target, identity)

    def info(self) -> list[dict]:
        import json

        rows = []
        if not self.dir.exists():
            return rows
        for folder in sorted(p for p in self.dir.iterdir() if p.is_dir()):
            ident_file = folder / "identity.json"
            ident = json.loads(ident_file.read_text()) if ident_file.exists() else {}
            files = list(folder.glob("*/*.npy"))
            rows.append({
                "key": folder.name, "backbone": ident.get("name", "?"), "entries": len(files),
                "bytes": sum(f.stat().st_size for f in files),
            })
        return rows

    def clear(self, backbone: str | None = None) -> int:
        """Remove all entries, or only those of one backbone name; returns folders removed."""
        removed = 0
        for row in self.info():
            if backbone is None or row["backbone"] == backbone:
                shutil.rmtree(self.dir / row["key"])
                removed += 1
        return removed
