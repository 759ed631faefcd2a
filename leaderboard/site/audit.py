"""The site's audit section per task: near-duplicate pairs as thumbnails side by side, likely mislabelled test
images, and the verdicts that change without them (from ``audit.json``; see :mod:`skinbench.data.audit`)."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError
from skinbench.hashing import config_hash

from ..audit import AuditFindings
from .content import TaskPage
from .names import without_local_paths

THUMBNAIL = 128
"""Longest side of a thumbnail, in pixels."""
MAX_PAIRS = 48
MAX_FLAGGED = 48
"""Shown on a page; audit.json (downloadable with the run) lists every one."""


def audit_section(root: Path, page: TaskPage, findings: AuditFindings | None) -> dict | None:
    """What the task page's audit section shows, with thumbnails written under ``audit/``; None without an audit."""
    if findings is None:
        return None
    duplicates = findings.near_duplicates.get(page.dataset)
    flagged = next((t for t in findings.label_errors if (t["dataset"], t["task"]) == (page.dataset, page.task)), None)
    changed = [c for c in findings.changed if (c["dataset"], c["task"]) == (page.dataset, page.task)]
    if duplicates is None and flagged is None:
        return None
    pairs = sorted((duplicates or {}).get("pairs") or [], key=lambda p: (-p.get("straddles", 0), p["distance"]))
    return {
        "threshold": (duplicates or {}).get("threshold"), "joined": bool((duplicates or {}).get("joined")),
        "checked": duplicates is not None, "total_pairs": len(pairs),
        "pairs": [{"a": _image(root, p["image_a"]), "b": _image(root, p["image_b"]), "patient_a": p["patient_a"],
                   "patient_b": p["patient_b"], "distance": p["distance"],
                   "sides": ", ".join(f"{part}: {side}" for part, side in (p.get("sides") or {}).items()),
                   "straddles": p.get("straddles", 0)} for p in pairs[:MAX_PAIRS]],
        "labels": None if flagged is None else {
            "best": flagged["best"], "images": flagged["images"], "problem": flagged["problem"],
            "total": len(flagged["flagged"]),
            "flagged": [{**f, "thumb": _image(root, f["image"])} for f in flagged["flagged"][:MAX_FLAGGED]]},
        "changed": changed, "note": findings.note,
    }


def _image(root: Path, path: str) -> dict:
    """A thumbnail of ``path`` under ``audit/`` (None when the image is not on this machine) and its shown name."""
    name = without_local_paths(str(path))
    target = root / "audit" / f"{config_hash(str(path), 20)}.png"
    try:
        with Image.open(path) as image:
            thumb = image.convert("RGB")
            thumb.thumbnail((THUMBNAIL, THUMBNAIL))
            target.parent.mkdir(parents=True, exist_ok=True)
            thumb.save(target)
    except (OSError, UnidentifiedImageError, ValueError):
        return {"href": None, "name": name}
    return {"href": target.relative_to(root).as_posix(), "name": name}
