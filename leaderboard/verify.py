"""``skinbench verify``: check a submission bundle before it joins a leaderboard.

Four checks, each naming the file and the record that fails (a :class:`DataError`: exit 2):

1. the manifest is a valid record of a known schema, every file it lists is there with its sha256 and
   size, and nothing else is;
2. every record of ``results.jsonl`` is intact, and every stored metric of every model row is what
   :func:`skinbench.metrics.score` gives on its stored predictions;
3. every number of ``leaderboard.json`` is what the leaderboard statistics give on the bundle's rows and
   predictions (same resamples and seed);
4. when the dataset can be loaded here, its data fingerprint and the test patients that its protocol
   draws are those of the bundle's split files (otherwise the report says the split was not checked).
"""
from __future__ import annotations

import json
import math
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError
from skinbench.api import ConfigError, DataError, SkinbenchError
from skinbench.metrics import score
from skinbench.record.store import ResultsStore
from skinbench.vocabulary import DUMMY_HEADS, FULL_DATA

from .bundle import (
    BUNDLE_SCHEMA,
    CONFIGURATION_NUMBERS,
    CONFIGURATION_WORDS,
    EFFECT_NUMBERS,
    LEADERBOARD,
    MANIFEST,
    Manifest,
    leaderboard_record,
    row_predictions,
    sha256,
)
from .merge import test_patients
from .stats import leaderboard_stats
from .tables import read_results

TOLERANCE = 1e-9
"""Recomputed numbers may differ from the stored ones by float rounding only."""


@dataclass
class Verified:
    bundle: Path
    run_dir: Path
    manifest: Manifest
    checks: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        return [f"{self.bundle}: run '{self.manifest.run}' of suite '{self.manifest.suite}' (skinbench "
                f"{self.manifest.skinbench}, commit {self.manifest.git_commit or 'unknown'})",
                *(f"  ok: {c}" if not c.startswith("not checked") else f"  {c}" for c in self.checks),
                f"verified in {self.seconds:.1f} s"]


def verify_bundle(bundle: str | Path, into: Path | None = None) -> Verified:
    """Unpack ``bundle`` (into ``into``, else a temporary folder removed afterwards) and run every check."""
    import tempfile

    start = time.perf_counter()
    bundle = Path(bundle)
    if into is None:
        with tempfile.TemporaryDirectory(prefix="skinbench-verify-") as tmp:
            verified = _verify(bundle, Path(tmp))
    else:
        verified = _verify(bundle, into)
    verified.seconds = time.perf_counter() - start
    return verified


def _verify(bundle: Path, folder: Path) -> Verified:
    run_dir = _unpack(bundle, folder)
    manifest = _manifest(bundle, run_dir)
    checks = [_digests(bundle, run_dir, manifest)]
    checks.append(_rows(bundle, run_dir))
    checks.append(_leaderboard(bundle, run_dir, manifest))
    checks += _splits(bundle, run_dir)
    return Verified(bundle, run_dir, manifest, checks)


def _unpack(bundle: Path, folder: Path) -> Path:
    """The bundle's one run folder, extracted with tarfile's ``data`` filter (no paths outside, no links out)."""
    if not bundle.is_file():
        raise SkinbenchError(f"{bundle} does not exist or is not a file: give a bundle written by `skinbench bundle`")
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            members = tar.getmembers()
            roots = {m.name.split("/")[0] for m in members}
            if len(roots) != 1 or any(not (m.isfile() or m.isdir()) for m in members):
                raise DataError(f"{bundle}: a bundle holds one run folder of plain files; this one holds "
                                f"{sorted(roots)[:5]}")
            folder.mkdir(parents=True, exist_ok=True)
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{bundle}: not a readable bundle ({exc.__class__.__name__}: {exc}); was it truncated or "
                        "not written by `skinbench bundle`?") from None
    return folder / roots.pop()


def _manifest(bundle: Path, run_dir: Path) -> Manifest:
    path = run_dir / MANIFEST
    if not path.exists():
        raise DataError(f"{bundle}: {MANIFEST} is missing; every bundle carries one")
    try:
        manifest = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DataError(f"{bundle}: {MANIFEST}: {'.'.join(map(str, first['loc'])) or 'record'}: {first['msg']}") from None
    if manifest.bundle_schema != BUNDLE_SCHEMA:
        raise DataError(f"{bundle}: {MANIFEST}: bundle schema {manifest.bundle_schema}; this skinbench reads "
                        f"schema {BUNDLE_SCHEMA}")
    return manifest


def _digests(bundle: Path, run_dir: Path, manifest: Manifest) -> str:
    problems = []
    listed = {f.path for f in manifest.files}
    for digest in manifest.files:
        path = run_dir / digest.path
        if not path.is_file():
            problems.append(f"{digest.path}: listed in {MANIFEST} but missing")
            continue
        data = path.read_bytes()
        if len(data) != digest.bytes or sha256(data) != digest.sha256:
            problems.append(f"{digest.path}: its sha256 is {sha256(data)[:16]}…, the manifest says "
                            f"{digest.sha256[:16]}… (the file was altered after bundling)")
    extra = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")
                   if p.is_file() and p.relative_to(run_dir).as_posix() not in listed | {MANIFEST})
    problems += [f"{name}: in the bundle but not in {MANIFEST}" for name in extra]
    if problems:
        raise DataError([f"{bundle}: {p}" for p in problems])
    return f"{len(manifest.files)} files match their sha256 digests"


def _rows(bundle: Path, run_dir: Path) -> str:
    """Intact records, and every model row's stored metrics recomputed from its stored predictions."""
    store = ResultsStore(run_dir)
    store.records()
    if store.problems:
        raise DataError([f"{bundle}: {p.replace(str(run_dir) + '/', '')}" for p in store.problems])
    results = read_results(run_dir)
    models = results[(results["status"] == "ok") & ~results["head"].isin(DUMMY_HEADS)]
    problems = []
    for row in models.itertuples(index=False):
        path = row_predictions(run_dir, row)
        where = f"results.jsonl: cell {row.cell_id} seed {row.seed} split {row.split} fold {row.fold}" + (
            f" point {row.point} draw {row.draw}" if str(getattr(row, "point", FULL_DATA)) != FULL_DATA else "")
        if not path.exists():
            problems.append(f"{where}: its predictions file {path.name} is missing")
            continue
        frame = pd.read_parquet(path)
        classes = [c[len("proba_"):] for c in frame if c.startswith("proba_")]
        lookup = {c: i for i, c in enumerate(classes)}
        y = np.array([lookup.get(str(v), -1) for v in frame["y_true"]])
        pred = np.array([lookup.get(str(v), -1) for v in frame["y_pred"]])
        if (y < 0).any() or (pred < 0).any():
            problems.append(f"{where}: predictions/{path.name} holds a label outside its classes {classes}")
            continue
        proba = frame[[f"proba_{c}" for c in classes]].to_numpy(float)
        for metric, value in score(y, pred, proba, len(classes), bool(row.ordinal)).items():
            stored = getattr(row, metric, None)
            if not _same(stored, value):
                problems.append(f"{where}: {metric} is {stored}, its predictions ({path.name}) give {value}")
    if problems:
        raise DataError([f"{bundle}: {p}" for p in problems])
    return f"{len(results)} result records intact; the metrics of {len(models)} model rows match their predictions"


def _leaderboard(bundle: Path, run_dir: Path, manifest: Manifest) -> str:
    path = run_dir / LEADERBOARD
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{bundle}: {LEADERBOARD}: cannot be read ({exc})") from None
    stats = leaderboard_stats(read_results(run_dir), n_boot=manifest.n_boot, seed=manifest.seed)
    fresh = leaderboard_record(stats, manifest.seed)
    problems = []
    for part, key, columns in (("configurations", ("cell_id",), (*CONFIGURATION_NUMBERS, *CONFIGURATION_WORDS)),
                               ("augmentation", ("cell_id", "cell_id_real"), (*EFFECT_NUMBERS, "effect"))):
        recomputed = {tuple(r[k] for k in key): r for r in fresh[part]}
        recorded = {tuple(r.get(k) for k in key): r for r in stored.get(part) or []}
        for name in sorted(set(recorded) ^ set(recomputed), key=str):
            problems.append(f"{LEADERBOARD}: {part} {'/'.join(name)} is {'not recomputed' if name in recorded else 'missing'}")
        for name in set(recorded) & set(recomputed):
            for column in columns:
                if not _same(recorded[name].get(column), recomputed[name].get(column)):
                    problems.append(f"{LEADERBOARD}: {part} {'/'.join(name)}: {column} is "
                                    f"{recorded[name].get(column)}, recomputed {recomputed[name].get(column)}")
    if problems:
        raise DataError([f"{bundle}: {p}" for p in problems[:20]]
                        + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else []))
    return (f"{len(fresh['configurations'])} leaderboard rows and {len(fresh['augmentation'])} augmentation effects "
            f"recomputed from the predictions ({manifest.n_boot} resamples, seed {manifest.seed})")


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str) or isinstance(a, bool) or isinstance(b, bool):
        return a == b
    a = None if a is None or (isinstance(a, float) and math.isnan(a)) else float(a)
    b = None if b is None or (isinstance(b, float) and math.isnan(b)) else float(b)
    return a == b if a is None or b is None else abs(a - b) <= TOLERANCE


def _splits(bundle: Path, run_dir: Path) -> list[str]:
    """Each dataset's split files against the split its data and protocol give here, when the data loads."""
    from skinbench.configuration.registry import load_catalogue
    from skinbench.configuration.suite import Entry
    from skinbench.data.preflight import load_dataset
    from skinbench.data.protocol import Protocol

    suite = yaml.safe_load((run_dir / "suite.yaml").read_text(encoding="utf-8")) or {}
    protocol = Protocol(**{k: v for k, v in (suite.get("protocol") or {}).items() if k in Protocol.model_fields})
    plugins = suite.get("plugins") or {}
    catalogue = load_catalogue(plugins.get("block") or (), plugins.get("autoload"))
    lines = []
    for entry in suite.get("datasets") or []:
        label = str(entry.get("label", entry.get("name")))
        recorded = test_patients(run_dir, label)
        fingerprint = _recorded_fingerprint(run_dir, label)
        try:
            plugin = catalogue.create("dataset", entry["name"], entry.get("params") or {})
            loaded = load_dataset(plugin, Entry(name=entry["name"], params=entry.get("params") or {},
                                                tasks=entry.get("tasks")), protocol)
        except (DataError, ConfigError, OSError) as exc:
            lines.append(f"not checked: the split of '{label}' (its data cannot be loaded here: "
                         f"{str(exc).splitlines()[0][:160]})")
            continue
        if loaded.fingerprint != fingerprint:
            lines.append(f"not checked: the split of '{label}' (the data here has fingerprint {loaded.fingerprint}, "
                         f"the bundle's {fingerprint}: another version of the data)")
            continue
        here = _split_of(loaded, protocol)
        if recorded != here:
            raise DataError(f"{bundle}: split file of '{label}': its test patients are not those the dataset and "
                            "the bundle's protocol give here (same data fingerprint): the split was edited or chosen "
                            "otherwise")
        lines.append(f"the split of '{label}' is the one its data (fingerprint {fingerprint}) and protocol give")
    return lines


def _recorded_fingerprint(run_dir: Path, label: str) -> str | None:
    rows = read_results(run_dir)
    rows = rows[rows["dataset"] == label]
    return str(rows["data_fingerprint"].iloc[0]) if len(rows) else None


def _split_of(loaded, protocol) -> dict:
    """As the run's split file records them (see ``skinbench.record.rundir.split_record``)."""
    if protocol.cv:
        parts = {str(r): [loaded.splits[(r, f)] for f in protocol.fold_keys()] for r in protocol.split_keys()}
    else:
        parts = {str(split): test for (split, _), test in loaded.splits.items()}
    return json.loads(json.dumps(parts, sort_keys=True))
