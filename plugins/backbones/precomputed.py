"""Embeddings computed elsewhere, looked up by image path: any model, no forward pass.

Google ships Derm Foundation embeddings of SCIN as an ``.npz`` keyed by the bucket-relative
path (``dataset/images/<id>.png``); a CSV or parquet table with a path column works too
(one column per dimension, or one column holding the vectors). A dataset path matches a key
when it equals it, equals it relative to ``root``, or ends with it, so absolute local paths
find their relative keys. Every image without an embedding is reported, never dropped.
"""
from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field
from skinbench.sdk import Backbone, ConfigError, DataError, file_digest, hookimpl, PluginError, PluginParams


def _normalise(path: str) -> str:
    return PurePath(str(path).replace("\\", "/")).as_posix()


class Precomputed(Backbone):
    """Embeddings from a .npz (keyed by image path) or a CSV/parquet table, e.g. Google's SCIN file."""

    name = "precomputed"

    class Params(PluginParams):
        file: str | None = Field(None, description=".npz, .csv or .parquet")
        model: str = Field("unknown", description="what computed them, for labels and provenance")
        path_column: str = Field("image", description="tables only: the column holding image paths")
        root: str | None = Field(None, description="optional folder the stored paths are relative to")

    transient = ("_vectors",)
    runtime_params = frozenset()
    meta = {"license": "as the file's source", "citation": "as the file's source"}

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self._vectors: dict[str, Any] | None = None

    def _file(self) -> Path:
        path = Path(self.config["file"] or "").expanduser()
        if not self.config["file"] or not path.is_file():
            raise ConfigError(f"backbone 'precomputed': 'file' must be an existing .npz, .csv or .parquet "
                              f"file (got {self.config['file']!r})")
        return path

    def artefacts(self) -> dict[str, Any]:
        path = self._file()
        return {"file": path.name, "sha256": file_digest(path)}

    def embed(self, images):
        raise PluginError("backbone 'precomputed' looks embeddings up by image path; it cannot embed decoded images")

    def embed_paths(self, paths: list[str]) -> np.ndarray:
        vectors = self.vectors()
        keys = [self._key_of(p, vectors) for p in paths]
        missing = [p for p, k in zip(paths, keys) if k is None]
        if missing:
            raise DataError([f"{self._file()}: no embedding for image {p}" for p in missing])
        return np.stack([np.asarray(vectors[k], dtype=np.float32).reshape(-1) for k in keys])

    def vectors(self) -> dict[str, Any]:
        """Normalised path -> vector (an open ``NpzFile`` reads each array only when asked)."""
        if self._vectors is None:
            path = self._file()
            if path.suffix == ".npz":
                self._vectors = _NpzVectors(path)
            elif path.suffix in (".csv", ".parquet"):
                self._vectors = self._table_vectors(path)
            else:
                raise ConfigError(f"backbone 'precomputed': {path} is not .npz, .csv or .parquet")
        return self._vectors

    def _table_vectors(self, path: Path) -> dict[str, np.ndarray]:
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        column = self.config["path_column"]
        if column not in table:
            raise ConfigError(f"{path}: no column '{column}' with image paths; columns: {', '.join(map(str, table.columns))} "
                              "(set the backbone's 'path_column')")
        rest = table.drop(columns=[column])
        if rest.shape[1] == 1 and isinstance(rest.iloc[0, 0], (list, np.ndarray)):
            rows = [np.asarray(v, dtype=np.float32) for v in rest.iloc[:, 0]]
        else:
            rows = list(rest.to_numpy(dtype=np.float32))
        return {_normalise(p): row for p, row in zip(table[column], rows)}

    def _key_of(self, path: str, vectors: dict[str, Any]) -> str | None:
        """The stored key for ``path``: as given, relative to ``root``, or its longest matching tail."""
        given = _normalise(path)
        candidates = [given]
        if self.config["root"]:
            root = _normalise(Path(self.config["root"]).expanduser())
            if given.startswith(root + "/"):
                candidates.append(given[len(root) + 1:])
        parts = PurePath(given).parts
        candidates += ["/".join(parts[i:]) for i in range(1, len(parts))]
        return next((c for c in candidates if c in vectors), None)


class _NpzVectors(dict):
    """An ``.npz`` seen as normalised key -> array, read lazily and without unpickling."""

    def __init__(self, path: Path):
        self.path = path
        self.npz = np.load(path, allow_pickle=False)
        super().__init__({_normalise(k): k for k in self.npz.files})

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self.npz[super().__getitem__(key)]
        except ValueError as exc:  # object arrays would need pickle, which could run code
            raise ConfigError(f"{self.path}: entry '{key}' "
                              f"is not a plain numeric array ({exc}); skinbench never unpickles") from None


@hookimpl
def skinbench_backbones():
    return [Precomputed]
