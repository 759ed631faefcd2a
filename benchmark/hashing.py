"""Stable hashes of configurations and files: cell ids and cache keys share them."""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-able configuration; key order does not matter."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, memoised on (path, size, mtime)."""
    stat = Path(path).stat()
    return _file_digest(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=200_000)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
