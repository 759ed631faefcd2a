"""The run header: what a reader needs to trust the rows (resolved suite, receipt, split files, audit)."""
from __future__ import annotations

import yaml

from skinbench.atomic import atomic_write_text
from skinbench.data.audit import audit_record, write_audit
from skinbench.hashing import config_hash
from skinbench.record.receipt import receipt
from skinbench.record.store import ResultsStore
from skinbench.configuration.suite import resolved
from skinbench.data.checks import class_counts, left_out_warnings
from skinbench.data.preflight import LoadedDataset, Preflight


def write_run_header(store: ResultsStore, checked: Preflight) -> None:
    """``suite.yaml`` (every default and each plugin's identity), ``receipt.json``, ``split/*.json`` and
    ``audit.json`` (near-duplicates and contamination)."""
    atomic_write_text(store.dir / "suite.yaml", yaml.safe_dump(resolved(checked.suite, checked.plugins), sort_keys=False))
    store.write_json("receipt.json", {**receipt(checked.catalogue, checked.plugins),
                                      "evaluation": checked.suite.protocol.scheme_record()})
    for ds in checked.datasets:
        store.write_json(split_path(ds), split_record(ds, checked))
    write_audit(store.dir, audit_record(checked))  # the fast audit; `skinbench audit --out` adds label errors


def split_path(ds: LoadedDataset) -> str:
    """``split/<name>.json``, with a hash of the parameters when they differ from the defaults,
    so two configurations of one dataset plugin in a suite keep separate split files."""
    plugin = ds.plugin
    suffix = "" if plugin.label == plugin.name else f"-{config_hash(plugin.identity.params, 8)}"
    return f"split/{plugin.name}{suffix}.json"


def split_record(ds: LoadedDataset, checked: Preflight) -> dict:
    """Test patients per split (holdout) or per repeat and outer fold (cv), the protocol that chose them
    and class counts on each side."""
    protocol = checked.suite.protocol
    record = {"dataset": ds.label, "display_name": ds.display_name, "dataset_config": ds.plugin.config,
              "data_fingerprint": ds.fingerprint, "protocol": protocol.as_dict(), "scheme": protocol.scheme,
              "left_out": {t.name: left_out_warnings(t, f"dataset '{ds.label}'") for t in ds.tasks if t.left_out}}
    if protocol.cv:
        folds = {str(r): [ds.splits[(r, f)] for f in protocol.fold_keys()] for r in protocol.split_keys()}
        counts = {f"{r}/{f}": {t.name: {str(c): n for c, n in class_counts(t, test).items()} for t in ds.tasks}
                  for (r, f), test in ds.splits.items()}
        return {**record, "folds_per_repeat": folds, "class_counts_per_fold": counts, "warnings": ds.warnings}
    splits = {split: test for (split, _), test in ds.splits.items()}
    counts = {str(k): {t.name: {str(c): n for c, n in class_counts(t, test).items()} for t in ds.tasks}
              for k, test in splits.items()}
    return {**record, "test_groups": splits[0], "test_groups_per_split": {str(k): g for k, g in splits.items()},
            "class_counts_per_split": counts, "warnings": ds.warnings}
