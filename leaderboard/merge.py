"""Merging the rows of several run directories, with guards: one dataset, one data version, one set of test patients.

Why: a leaderboard compares configurations on the same test patients. Two run directories of "the
same" dataset made on different data (a corrected label file: another data fingerprint) or with
another split (another protocol or split file: other test patients) would mix incomparable scores
in one table, and the paired statistics would silently pair different patients. So rows of one
dataset label must agree on both, unless the caller asks to show each version as its own dataset.
A cell found in two run directories counts once only when its resolved identity is the same in both.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from skinbench.api import DataError
from skinbench.record.store import ROW_KEY, merge_rows

logger = logging.getLogger("skinbench.leaderboard")

IDENTITY = ("dataset", "task", "backbone_label", "augmenter_label", "head_label", "data_fingerprint", "config")
"""What must be equal for two rows with the same key from two run directories to be one cell."""


def merge_runs(frames: list[pd.DataFrame], allow_different_data: bool = False) -> pd.DataFrame:
    """Rows of several run directories (each frame from :func:`~skinbench.leaderboard.read_results`), one per
    (cell_id, seed, split, fold).

    Rows of one dataset whose data fingerprint or test patients differ between run directories are refused
    (:class:`DataError` naming both runs), or with ``allow_different_data`` shown as separate datasets
    (the later version's label gains `` @ <run directory>``).
    """
    frames = [f for f in frames if not f.empty]
    frames = _separate_versions(frames, allow_different_data)
    _check_identities(frames)
    return merge_rows(frames)


def data_version(frame: pd.DataFrame, dataset: str) -> dict:
    """What makes two runs' rows of ``dataset`` comparable: its scheme, data fingerprint and test patients
    (from the run's split file; None when the run directory has none)."""
    rows = frame[frame["dataset"] == dataset]
    run_dir = str(rows["run_dir"].iloc[0]) if "run_dir" in rows and len(rows) else ""
    return {"scheme": str(rows["scheme"].iloc[0]) if "scheme" in rows else "holdout",
            "fingerprint": str(rows["data_fingerprint"].iloc[0]),
            "patients": test_patients(run_dir, dataset) if run_dir else None}


def test_patients(run_dir: str | Path, dataset: str) -> dict | None:
    """Test patients per split (holdout) or per repeat and outer fold (cv) of ``dataset``, as its split file
    in ``run_dir`` records them; None without a readable split file for it."""
    for path in sorted((Path(run_dir) / "split").glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if record.get("dataset") == dataset:
            parts = record.get("test_groups_per_split") or record.get("folds_per_repeat")
            return json.loads(json.dumps(parts, sort_keys=True)) if parts is not None else None
    return None


def _separate_versions(frames: list[pd.DataFrame], allow: bool) -> list[pd.DataFrame]:
    seen: dict[str, list[tuple[dict, str]]] = {}  # dataset -> (version, run_dir of its first run)
    out = []
    for frame in frames:
        run_dir = str(frame["run_dir"].iloc[0]) if "run_dir" in frame else "(rows)"
        renames = {}
        for dataset in pd.unique(frame["dataset"]):
            version = data_version(frame, dataset)
            versions = seen.setdefault(dataset, [])
            match = next((first for v, first in versions if _same_data(v, version)), None)
            if match is None and versions and not allow:
                raise DataError(_difference(dataset, versions[0], (version, run_dir)))
            if match is None:
                versions.append((version, run_dir))
                match = run_dir
            if match != versions[0][1]:
                renames[dataset] = f"{dataset} @ {match}"
        out.append(frame.assign(dataset=frame["dataset"].replace(renames)) if renames else frame)
    return out


def _same_data(a: dict, b: dict) -> bool:
    """Same fingerprint and, when both runs recorded them under one scheme, the same test patients (runs of
    different schemes are refused later, by :func:`~skinbench.leaderboard.stats.one_scheme`)."""
    if a["fingerprint"] != b["fingerprint"]:
        return False
    return a["scheme"] != b["scheme"] or a["patients"] is None or b["patients"] is None or a["patients"] == b["patients"]


def _difference(dataset: str, first: tuple[dict, str], other: tuple[dict, str]) -> str:
    (a, run_a), (b, run_b) = first, other
    if a["fingerprint"] != b["fingerprint"]:
        why = f"different data (data fingerprint {a['fingerprint']} in {run_a}, {b['fingerprint']} in {run_b})"
    else:
        why = f"the same data but different test patients (split files of {run_a} and {run_b} differ)"
    return (f"dataset '{dataset}': run directories {run_a} and {run_b} were computed on {why}; their scores "
            "cannot share one leaderboard. Rerun one on the other's data and split, or pass "
            "--allow-different-data to show them as separate datasets")


def _check_identities(frames: list[pd.DataFrame]) -> None:
    """A cell in two run directories counts once only if its identity is the same in both; a differing score
    of the same identity is kept (the later run's) and named, since `skinbench compare` can say why."""
    if len(frames) < 2:
        return
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[rows.duplicated(list(ROW_KEY), keep=False)]
    columns = [c for c in IDENTITY if c in rows]
    disagree = []
    for key, group in rows.groupby(list(ROW_KEY), sort=False):
        identities = group[columns].astype(str).drop_duplicates()
        runs = " and ".join(pd.unique(group["run_dir"].astype(str))) if "run_dir" in group else "two frames"
        if len(identities) > 1:
            differing = [c for c in columns if identities[c].nunique() > 1]
            raise DataError(f"cell {key[0]} (seed {key[1]}, split {key[2]}) is in {runs} with different "
                            f"identities ({', '.join(differing)} differ); a cell id must name one configuration: "
                            "were the results edited?")
        ok = group[group["status"] == "ok"]
        if "macro_f1" in ok and ok["macro_f1"].nunique() > 1:
            disagree.append(f"cell {key[0]} seed {key[1]}: macro-F1 {' vs '.join(f'{v:.3f}' for v in ok['macro_f1'])} "
                            f"in {runs}")
    if disagree:
        logger.warning("%d (cell, seed) row(s) of the same identity scored differently in two run directories "
                       "(e.g. %s); the leaderboard keeps the last run's; `skinbench compare` says where and by how "
                       "much", len(disagree), disagree[0])
