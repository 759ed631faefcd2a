"""The leaderboard a finished run last printed, reused while nothing it was computed from has changed.

A rerun of a finished suite computes no cell; without this it would still redo the patient bootstrap and
redraw the chart to print the same page. The key covers every input of the report: the result rows, the
suite and split files, the generation log and strip, each prediction file's (name, size, mtime), the
source files of skinbench's core and leaderboard packages (size, mtime: any edit recomputes). The text of
every format is kept, so a rerun with another ``--format`` reuses it too. A changed input is a new key, so the report is computed afresh; deleting
``leaderboard.html`` or the chart does the same.
"""
from __future__ import annotations

import hashlib
import json
import os
from importlib.util import find_spec
from pathlib import Path

import skinbench

KEPT = ".leaderboard.json"
READ_WHOLE = ("results.jsonl", "results.csv", "suite.yaml", "generation_log.csv", "synthetic_strip.png")
"""Small inputs hashed by content (the runner rewrites ``suite.yaml`` on every run, with the same bytes)."""


def report_key(run_dir: Path) -> str:
    """Digest of everything :func:`skinbench.leaderboard.build_report` and the chart read."""
    h = hashlib.sha256(f"{skinbench.__version__}\0".encode())
    for name in READ_WHOLE:
        path = run_dir / name
        h.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"-") + b"\0")
    for path in sorted((run_dir / "split").glob("*.json")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(_stats(run_dir / "predictions"))
    for package in ("skinbench", "skinbench.leaderboard"):
        h.update(_stats(Path(find_spec(package).origin).parent))
    return h.hexdigest()


def _stats(root: Path) -> bytes:
    """(relative name, size, mtime_ns) of every file under a folder (bytecode caches left out)."""
    out = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        for name in files:
            stat = os.stat(os.path.join(folder, name))
            out.append(f"{os.path.relpath(os.path.join(folder, name), root)}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return "\n".join(sorted(out)).encode()


def kept_report(run_dir: Path, key: str) -> dict | None:
    """The kept record (``texts``: format -> printed text, ``wrote``: file names in ``run_dir``, ``notes``) when
    its key matches and the files it wrote still exist."""
    try:
        kept = json.loads((run_dir / KEPT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("key") != key:
        return None
    if not all((run_dir / name).exists() for name in kept.get("wrote", [])):
        return None
    return kept


def keep_report(run_dir: Path, key: str, texts: dict[str, str], wrote: list[str], notes: list[str]) -> None:
    """Record what was printed and written, for the next rerun (never fatal: it only saves time)."""
    from skinbench.atomic import atomic_write_text

    try:
        atomic_write_text(run_dir / KEPT, json.dumps({"key": key, "texts": texts, "wrote": wrote, "notes": notes}))
    except OSError:
        pass
