"""What a reader sees instead of internal names: display names without local paths, readable
class names, and file names that are safe on every static host."""
from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml
from skinbench.api import label_key

LOCAL_PATH = re.compile(r"(?<![\w.~:/\\])(?:~|[A-Za-z]:)?[/\\][^\s,()\[\]{}'\"]*")
"""An absolute path (POSIX, home-relative or Windows) inside a label; not a URL's ``//host/...``
nor a relative ``models/x``."""


def without_local_paths(text: str) -> str:
    """``generic-csv(csv=/home/me/photos.csv)`` → ``generic-csv(csv=photos.csv)``: where the
    files lay on the machine that ran the suite means nothing to a reader, and can leak a user name."""
    return LOCAL_PATH.sub(lambda match: re.split(r"[/\\]", match.group(0).rstrip("/\\"))[-1] or "/", text)


def suite_display_names(suite: dict) -> dict[str, str]:
    """Dataset label (as in the result rows) → the name a reader sees: the suite's ``label:``
    (``display_name`` in the resolved ``suite.yaml``), else the label without local paths."""
    names = {}
    for entry in suite.get("datasets") or []:
        label = str(entry.get("label", entry.get("name", "")))
        names[label] = str(entry.get("display_name") or without_local_paths(label))
    return names


def slug(*parts: Any) -> str:
    """A short ASCII file name for user-given names (``<script>`` or ``../`` included), unique by a hash."""
    text = "-".join(str(p) for p in parts)
    readable = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "x"
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def packaged_prompts() -> dict:
    return yaml.safe_load(resources.files("skinbench").joinpath("prompts/cosmetic.yaml").read_text(encoding="utf-8"))


def prompt_files(suite: dict) -> list[dict]:
    """Prompt files named by the suite's augmenters that are still readable here, then the packaged one."""
    found = []
    for entry in suite.get("augmenters") or []:
        path = (entry.get("params") or {}).get("prompts")
        if path and Path(path).is_file():
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            if isinstance(data, dict):
                found.append(data)
    return found + [packaged_prompts()]


def class_names(task: str, classes: Iterable[Any], prompt_books: list[dict]) -> dict[str, str]:
    """Readable name of each class code of ``task``: the first phrase of its class descriptor in
    the first prompt file that knows the task (the ``merged`` descriptor when the dataset declares
    fewer classes than the file, i.e. merged some). Unknown tasks and classes keep their code."""
    classes = [label_key(c) for c in classes]
    for book in prompt_books:
        entry = (book.get("tasks") or {}).get(task)
        if not entry:
            continue
        described = {label_key(k): str(v) for k, v in (entry.get("classes") or {}).items()}
        merged = {label_key(k): str(v) for k, v in (entry.get("merged") or {}).items()}
        if len(classes) < len(described):
            described.update(merged)
        return {c: _first_phrase(described[c]) if c in described else c for c in classes}
    return {c: c for c in classes}


def _first_phrase(descriptor: str) -> str:
    return re.split(r"[;.]", descriptor, maxsplit=1)[0].strip() or descriptor
