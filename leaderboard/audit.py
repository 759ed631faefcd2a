"""What the data audit (``audit.json`` in each run directory) adds to every leaderboard: the ``contamination``
column, warnings and the findings the site shows. Computed nowhere else: tables, CSV and site all call this.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from skinbench.data.audit import read_audit
from skinbench.data.audit.contamination import NO, UNKNOWN
from skinbench.vocabulary import DUMMY_HEADS

CONTAMINATION_CAPTION = ("Contamination: may the backbone have seen this dataset's images in pretraining? yes / "
                         "possible / no / unknown, from the plugins' declared sources and pretraining data "
                         "(audit.json; unknown when either is not declared)")


@dataclass
class AuditFindings:
    """The audits of a leaderboard's run directories, first run first."""

    contamination: dict[tuple[str, str], dict] = field(default_factory=dict)   # (dataset, backbone) -> record
    near_duplicates: dict[str, dict] = field(default_factory=dict)             # dataset -> record
    label_errors: list[dict] = field(default_factory=list)                     # per task
    changed: list[dict] = field(default_factory=list)                          # verdicts without flagged images
    note: str = ""


def audit_findings(results: pd.DataFrame) -> AuditFindings:
    """The audit records of every run directory the rows come from (a run without audit.json adds nothing)."""
    found = AuditFindings()
    for run_dir in pd.unique(results.get("run_dir", pd.Series(dtype=str)).astype(str)):
        record = read_audit(run_dir)
        if record is None:
            continue
        for row in record.get("contamination") or []:
            found.contamination.setdefault((row["dataset"], row["backbone"]), row)
        for ds in (record.get("near_duplicates") or {}).get("datasets") or []:
            found.near_duplicates.setdefault(ds["dataset"], ds)
        errors = record.get("label_errors") or {}
        found.label_errors += errors.get("tasks") or []
        found.changed += errors.get("changed") or []
        found.note = found.note or errors.get("note", "")
    return found


def contamination_column(configs: pd.DataFrame, findings: AuditFindings) -> pd.Series:
    """Per configuration row: the audit's value for its (dataset, backbone); ``no`` for a chance dummy (it sees
    no image), ``unknown`` where no audit answers."""
    values = []
    for dataset, backbone, head in zip(configs["dataset"], configs["backbone_label"], configs["head"]):
        if head in DUMMY_HEADS:
            values.append(NO)
        else:
            values.append(findings.contamination.get((str(dataset), str(backbone)), {}).get("value", UNKNOWN))
    return pd.Series(values, index=configs.index, dtype=object)


def audit_warnings(results: pd.DataFrame, findings: AuditFindings) -> list[str]:
    """Near-duplicates that were not joined, contamination that is not ruled out, and verdicts that change
    without the likely mislabelled images, for the leaderboard's warnings."""
    datasets = set(results["dataset"].astype(str))
    lines = []
    for dataset, ds in findings.near_duplicates.items():
        straddling = [p for p in ds.get("pairs") or [] if p.get("straddles", 0) > 0]
        if dataset in datasets and straddling and not ds.get("joined"):
            lines.append(f"{dataset}: {len(straddling)} near-duplicate image pair(s) under different patients fall on "
                         f"both sides of a test split (pHash distance ≤ {ds['threshold']}); scores may be inflated: "
                         "rerun with protocol.join_near_duplicates: true (audit.json lists the pairs)")
    used = set(zip(results["dataset"].astype(str), results["backbone_label"].astype(str)))
    for (dataset, backbone), row in findings.contamination.items():
        if (dataset, backbone) in used and row["value"] in ("yes", "possible"):
            lines.append(f"{dataset}: backbone {backbone} contamination {row['value']}: {row['why']}")
    for task in findings.label_errors:
        if task["flagged"] and task["dataset"] in datasets:
            lines.append(f"{task['dataset']}/{task['task']}: {len(task['flagged'])} test image(s) likely mislabelled "
                         f"(cleanlab on {task['best']}); kept in every table")
    for change in findings.changed:
        lines.append(f"{change['dataset']}/{change['task']}: {change['configuration']} is "
                     f"{change['verdict']} with every image and {change['verdict_without']} without the likely "
                     "mislabelled ones (sensitivity check, not a correction)")
    return lines
