"""Atomic file writes: readers, and a run killed half-way, never see a torn file."""
from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Callable


@lru_cache(maxsize=1)
def readable_mode() -> int:
    """0666 minus the process umask (0644 with the usual 022), as ``open()`` would create the file.

    ``mkstemp`` creates 0600 files, which would lock other users out of a shared cache or a
    published run directory."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write`` with a binary handle on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, readable_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, payload: Any, indent: int | None = 2) -> Path:
    text = json.dumps(payload, indent=indent, sort_keys=True, default=str)
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def utf8_problem(path: str | Path, what: str) -> str | None:
    """Why ``path`` cannot be used, when its name is not valid UTF-8 (a byte Linux allows in file names).

    Results, predictions and the site record paths in UTF-8 files (JSON, parquet, HTML), so such a name
    is refused up front with the path shown byte by byte, instead of a crash half-way through a run."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(text).decode("utf-8", "backslashreplace")
        return f"{what} {shown} has a name that is not valid UTF-8; rename it or choose another path"
    return None
