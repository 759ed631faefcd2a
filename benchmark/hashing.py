"""Stable hashes of configurations and files: cell ids and cache keys share them.

File digests are memoised in this process and, once a cache folder is chosen
(:func:`use_digest_store`), persisted in ``<cache>/digests.sqlite`` keyed by (path, size, mtime, inode):
a rerun or a second suite on the same 10,000 images stats them instead of reading them again. A file
rewritten in place changes its size or mtime; one replaced by another file changes its inode.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable

DIGEST_DB = "digests.sqlite"
_MEMO: dict[tuple[str, int, int, int], str] = {}
_STORE: DigestStore | None = None


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-able configuration; key order does not matter."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    return file_digests([path])[0]


def file_digests(paths: Iterable[str | Path]) -> list[str]:
    """sha256 of each file's bytes: from this process's memo, then the persisted store, then the bytes
    (the new ones saved to the store in one transaction)."""
    keys = [_key(p) for p in paths]
    missing = [k for k in dict.fromkeys(keys) if k not in _MEMO]
    if missing and _STORE is not None:
        _MEMO.update(_STORE.lookup(missing))
        missing = [k for k in missing if k not in _MEMO]
    if missing:
        computed = {k: _sha256(k[0]) for k in missing}
        _MEMO.update(computed)
        if _STORE is not None:
            _STORE.save(computed)
    return [_MEMO[k] for k in keys]


def use_digest_store(cache_root: str | Path | None) -> None:
    """Persist file digests under ``cache_root`` from now on (None: this process's memo only)."""
    global _STORE
    _STORE = DigestStore(Path(cache_root) / DIGEST_DB) if cache_root is not None else None


def _key(path: str | Path) -> tuple[str, int, int, int]:
    stat = os.stat(path)
    return str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class DigestStore:
    """(path, size, mtime_ns, inode) -> sha256 in SQLite. Only saves time: a store that cannot be opened or
    written is skipped (digests are then computed from the bytes, as without a store)."""

    def __init__(self, path: Path):
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute("CREATE TABLE IF NOT EXISTS digests (path TEXT, size INTEGER, mtime_ns INTEGER, "
                           "inode INTEGER, sha256 TEXT, PRIMARY KEY (path, size, mtime_ns, inode))")
        return connection

    def lookup(self, keys: list[tuple[str, int, int, int]]) -> dict[tuple[str, int, int, int], str]:
        found = {}
        try:
            with self._connect() as connection:
                wanted = set(keys)
                paths = sorted({key[0] for key in keys})
                for start in range(0, len(paths), 900):  # SQLite binds at most 999 variables per statement
                    chunk = paths[start:start + 900]
                    rows = connection.execute("SELECT path, size, mtime_ns, inode, sha256 FROM digests WHERE path IN "
                                              f"({', '.join('?' * len(chunk))})", chunk)
                    found.update({tuple(row[:4]): row[4] for row in rows if tuple(row[:4]) in wanted})
        except (sqlite3.Error, OSError):
            return {}
        return found

    def save(self, digests: dict[tuple[str, int, int, int], str]) -> None:
        try:
            with self._connect() as connection:
                connection.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?)",
                                       [(*key, sha) for key, sha in digests.items()])
        except (sqlite3.Error, OSError):
            pass
