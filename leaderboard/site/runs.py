"""The run directories a site is published from, read once: rows, resolved suite, receipt, splits."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from skinbench.api import SkinbenchError
from skinbench.hashing import file_digest
from skinbench.record.store import ResultsStore

from ..tables import read_results
from .names import suite_display_names, without_local_paths


@dataclass
class Run:
    dir: Path
    name: str
    suite: dict
    receipt: dict
    results: pd.DataFrame

    @property
    def store(self) -> ResultsStore:
        return ResultsStore(self.dir)

    @property
    def split_files(self) -> list[Path]:
        return sorted((self.dir / "split").glob("*.json"))

    def split_digests(self) -> dict[str, str]:
        """sha256 of each split file, so a reader can check a downloaded split is the one used."""
        return {path.name: file_digest(path) for path in self.split_files}

    def entry(self, kind: str, label: str) -> dict | None:
        """The resolved suite entry (name, params, identity, ...) whose label is ``label``."""
        return next((e for e in self.suite.get(kind) or [] if e.get("label") == label), None)


def load_runs(run_dirs: list[str | Path]) -> list[Run]:
    """Every run directory, each with a distinct short name; a missing or foreign folder is an error
    that names it."""
    runs = []
    for folder in run_dirs:
        folder = Path(folder)
        results = read_results(folder)  # each row keeps its run_dir, where its predictions are
        runs.append(Run(dir=folder, name=_unique_name(folder, runs), suite=_read_yaml(folder / "suite.yaml"),
                        receipt=_read_json(folder / "receipt.json"), results=results))
    if not runs:
        raise SkinbenchError("publish needs at least one run directory")
    return runs


def dataset_display_names(runs: list[Run]) -> dict[str, str]:
    """Dataset label → display name over all runs (see :func:`suite_display_names`); the first run naming it wins."""
    names: dict[str, str] = {}
    for run in runs:
        for label, name in suite_display_names(run.suite).items():
            names.setdefault(label, name)
        for label in run.results["dataset"].unique():
            names.setdefault(str(label), without_local_paths(str(label)))
    return names


def _unique_name(folder: Path, earlier: list[Run]) -> str:
    base = folder.resolve().name or "run"
    taken = {r.name for r in earlier}
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def _read_yaml(path: Path) -> dict:
    if not path.exists():
        raise SkinbenchError(f"{path} does not exist: publish needs the resolved suite that `skinbench run` writes")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SkinbenchError(f"{path}: expected the resolved suite (a mapping)")
    return data


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise SkinbenchError(f"{path} does not exist: publish needs the receipt that `skinbench run` writes")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SkinbenchError(f"{path}: not valid JSON ({exc})") from None
