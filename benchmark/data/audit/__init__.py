"""The data audit, before any verdict is believed: near-duplicates across patients, pretraining contamination,
likely label errors.

- :mod:`.near_duplicates`: perceptual hashes and a vectorised Hamming search (the preflight's fast part;
  ``protocol.join_near_duplicates`` joins the pairs into one patient).
- :mod:`.contamination`: ``yes`` / ``possible`` / ``no`` / ``unknown`` per (dataset, backbone) from the plugins'
  declared sources and pretraining data and the shipped ``collections.yaml``.
- :mod:`.label_errors`: cleanlab on the best configuration's out-of-sample probabilities, and the verdicts
  recomputed without the flagged images (a sensitivity check, not a correction).

``skinbench run`` writes the fast part into ``audit.json`` with the run header; ``skinbench audit SUITE.yaml
--out RUN`` adds the label errors once RUN holds predictions. The leaderboard and the site read ``audit.json``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skinbench.atomic import atomic_write_json

if TYPE_CHECKING:
    from skinbench.data.preflight import Preflight

AUDIT_FILE = "audit.json"
SCHEMA_VERSION = 1


def audit_record(checked: "Preflight", label_errors: dict | None = None) -> dict[str, Any]:
    """What ``audit.json`` holds for a suite that passed the preflight (plus label errors when computed)."""
    from .contamination import contamination_records

    protocol = checked.suite.protocol
    datasets = []
    for ds in checked.datasets:
        pairs = ds.near_duplicates
        datasets.append({"dataset": ds.label, "display_name": ds.display_name,
                         "threshold": protocol.near_duplicate_threshold, "joined": protocol.join_near_duplicates,
                         "images": int(len({p for t in ds.tasks for p in t.samples["image"]})),
                         "pairs": pairs.to_dict("records") if len(pairs) else []})
    return {"schema_version": SCHEMA_VERSION,
            "near_duplicates": {"method": "imagehash pHash (64 bits), Hamming distance ≤ threshold, pairs of "
                                          "different patients", "datasets": datasets},
            "contamination": contamination_records(checked.datasets, checked.plugins["backbones"]),
            "label_errors": label_errors}


def write_audit(run_dir: str | Path, record: dict[str, Any]) -> Path:
    """``audit.json`` in the run directory, written atomically."""
    return atomic_write_json(Path(run_dir) / AUDIT_FILE, record)


def read_audit(run_dir: str | Path) -> dict[str, Any] | None:
    """A run directory's audit, or None when it has none (a run from before the audit) or it is unreadable."""
    try:
        record = json.loads((Path(run_dir) / AUDIT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def audit_lines(record: dict[str, Any]) -> list[str]:
    """The audit for the terminal: pairs per dataset, contamination, flagged images and changed verdicts."""
    lines = []
    for ds in record["near_duplicates"]["datasets"]:
        pairs = ds["pairs"]
        straddling = sum(1 for p in pairs if p.get("straddles", 0) > 0)
        state = "joined into one patient each" if ds["joined"] else f"{straddling} on both sides of a test split"
        lines.append(f"near-duplicates in '{ds['display_name']}' ({ds['images']} images, pHash distance ≤ "
                     f"{ds['threshold']}): {len(pairs)} pair(s) under different patients"
                     + (f", {state}" if pairs else ""))
        lines += [f"  {p['distance']:>2}  {p['image_a']} ({p['patient_a']})  ~  {p['image_b']} ({p['patient_b']})"
                  for p in pairs[:10]]
        if len(pairs) > 10:
            lines.append(f"  … and {len(pairs) - 10} more in audit.json")
    for row in record["contamination"]:
        lines.append(f"contamination of '{row['dataset']}' by backbone '{row['backbone']}': {row['value']} ({row['why']})")
    errors = record.get("label_errors")
    if errors:
        for task in errors["tasks"]:
            why = f" ({task['problem']})" if task["problem"] else ""
            lines.append(f"likely label errors in {task['dataset']}/{task['task']} (best: {task['best']}, "
                         f"{task['images']} test images): {len(task['flagged'])} flagged{why}")
            lines += [f"  {f['image']} ({f['patient']}): labelled {f['label']}, model prefers {f['suggested']} "
                      f"(p of the given label {f['p_given_label']:.2f})" for f in task["flagged"][:10]]
        changed = errors["changed"]
        lines.append(f"verdicts that change without the flagged images: {len(changed) or 'none'}")
        lines += [f"  {c['dataset']}/{c['task']} {c['configuration']}: {c['verdict']} -> {c['verdict_without']}"
                  for c in changed]
        lines.append(errors["note"])
    return lines
