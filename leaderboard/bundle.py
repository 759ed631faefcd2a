"""Submission bundles: one run directory packed with the sha256 digest of every file and the leaderboard it gives.

Why: a leaderboard that accepts results from others needs results that carry their proof. A bundle is
a gzipped tar holding one folder per run (as the MTEB results repository keeps one folder per model
revision), in the run directory's own layout (results.jsonl, predictions/, receipt.json, suite.yaml,
split/), plus

- ``leaderboard.json``: every number of the run's leaderboard (intervals, Δs, Holm p-values, verdicts,
  ties, ranks, augmentation effects) with the resamples and seed that produced them;
- ``manifest.json``: a versioned, typed record (as lm-eval's result schema) naming the skinbench
  version and commit that wrote the bundle and the sha256 and size of every other file.

``skinbench verify`` (:mod:`.verify`) checks the digests, recomputes every number from the stored
predictions, and checks the split against the dataset when the data is present. What that proves,
and what it cannot: docs/compare.md.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from skinbench.api import SkinbenchError
from skinbench.atomic import atomic_write
from skinbench.vocabulary import FULL_DATA, LABEL_METRICS

from .stats import N_BOOT, LeaderboardStats, leaderboard_stats, predictions_file
from .tables import read_results

BUNDLE_SCHEMA = 1
MANIFEST, LEADERBOARD = "manifest.json", "leaderboard.json"
HEADER_FILES = ("results.jsonl", "receipt.json", "suite.yaml", "generation_log.csv")
CONFIGURATION_NUMBERS = (
    *(f"{m}_{s}" for m in LABEL_METRICS for s in ("mean", "ci_low", "ci_high")),
    "delta_vs_stratified", "delta_vs_stratified_ci_low", "delta_vs_stratified_ci_high", "delta_vs_best_dummy",
    "delta_vs_best_dummy_ci_low", "delta_vs_best_dummy_ci_high", "p_vs_best_dummy_holm", "p_below_chance_holm",
    "p_vs_best_holm", "rank", "rank_median", "rank_ci_low", "rank_ci_high",
)
CONFIGURATION_WORDS = ("verdict", "tied_with_best")
EFFECT_NUMBERS = ("gain", "gain_ci_low", "gain_ci_high", "p_helps_holm", "p_hurts_holm")
"""What leaderboard.json records per configuration and per augmentation effect, and verify recomputes."""


class FileDigest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class Manifest(BaseModel):
    """``manifest.json``: which bundle schema, who wrote it, how its numbers were computed, every file's digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bundle_schema: int
    run: str
    suite: str
    created: str
    skinbench: str
    git_commit: str | None
    n_boot: int = Field(ge=1)
    seed: int
    files: list[FileDigest]


@dataclass
class Written:
    path: Path
    files: int
    bytes: int
    configurations: int


def write_bundle(run_dir: str | Path, out: str | Path, n_boot: int = N_BOOT, seed: int = 0) -> Written:
    """Pack ``run_dir`` into ``out`` (``NAME.tar.gz``) with its leaderboard and manifest (see the module docstring)."""
    run_dir, out = Path(run_dir), Path(out)
    if not str(out).endswith(".tar.gz"):
        raise SkinbenchError(f"--out {out}: a bundle is a gzipped tar; name it NAME.tar.gz")
    results = read_results(run_dir)
    stats = leaderboard_stats(results, n_boot=n_boot, seed=seed)
    files = _run_files(run_dir, results)
    numbers = json.dumps(leaderboard_record(stats, seed), indent=1, sort_keys=True, allow_nan=False).encode()
    digests = [FileDigest(path=name, sha256=sha256(path.read_bytes()), bytes=path.stat().st_size)
               for name, path in files.items()]
    digests.append(FileDigest(path=LEADERBOARD, sha256=sha256(numbers), bytes=len(numbers)))
    receipt = json.loads((run_dir / "receipt.json").read_text(encoding="utf-8"))
    suite_name = _suite_name(run_dir)
    manifest = Manifest(bundle_schema=BUNDLE_SCHEMA, run=_run_name(run_dir), suite=suite_name,
                        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        skinbench=_version(), git_commit=receipt.get("git_commit"), n_boot=n_boot, seed=seed,
                        files=digests)
    root = manifest.run

    def pack(fh) -> None:
        with tarfile.open(fileobj=fh, mode="w:gz") as tar:
            for name, path in files.items():
                tar.add(path, arcname=f"{root}/{name}", recursive=False)
            for name, data in ((LEADERBOARD, numbers), (MANIFEST, manifest.model_dump_json(indent=1).encode())):
                info = tarfile.TarInfo(f"{root}/{name}")
                info.size, info.mtime, info.mode = len(data), int(datetime.now().timestamp()), 0o644
                tar.addfile(info, io.BytesIO(data))

    atomic_write(out, pack)
    return Written(out, len(digests) + 1, out.stat().st_size, len(stats.configurations))


def _run_files(run_dir: Path, results: pd.DataFrame) -> dict[str, Path]:
    """The files a bundle carries, by their path inside the run folder: the header, the split files and the
    predictions of every current successful row."""
    missing = [name for name in ("results.jsonl", "receipt.json", "suite.yaml") if not (run_dir / name).exists()]
    if missing:
        raise SkinbenchError(f"{run_dir} lacks {', '.join(missing)}: a bundle packs a run directory written by "
                             "`skinbench run`")
    files = {name: run_dir / name for name in HEADER_FILES if (run_dir / name).exists()}
    files.update({f"split/{p.name}": p for p in sorted((run_dir / "split").glob("*.json"))})
    ok = results[results["status"] == "ok"]
    for row in ok.itertuples(index=False):
        path = row_predictions(run_dir, row)
        if not path.exists():
            raise SkinbenchError(f"{path} is missing: every successful row's predictions go into a bundle, so that "
                                 "its numbers can be recomputed; rerun the suite into this run directory first")
        files[f"predictions/{path.name}"] = path
    return files


def row_predictions(run_dir: str | Path, row) -> Path:
    """The predictions file of one result row (a learning-curve row's carries its point and draw)."""
    return predictions_file(run_dir, row.cell_id, row.seed, row.split, row.fold, str(getattr(row, "point", FULL_DATA)),
                            int(getattr(row, "draw", 0)))


def leaderboard_record(stats: LeaderboardStats, seed: int) -> dict:
    """The numbers of a leaderboard, as ``leaderboard.json`` stores them (NaN as null)."""
    configs = stats.configurations
    effects = stats.augmentation
    return {
        "n_boot": stats.n_boot, "seed": seed,
        "configurations": [{"cell_id": str(row["cell_id"]), **{c: _plain(row.get(c)) for c in
                                                                (*CONFIGURATION_NUMBERS, *CONFIGURATION_WORDS)}}
                           for _, row in configs.iterrows()],
        "augmentation": [{"cell_id": str(row["cell_id"]), "cell_id_real": str(row["cell_id_real"]),
                          **{c: _plain(row.get(c)) for c in (*EFFECT_NUMBERS, "effect")}}
                         for _, row in effects.iterrows()],
    }


def _plain(value):
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run_name(run_dir: Path) -> str:
    name = run_dir.resolve().name or "run"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def _suite_name(run_dir: Path) -> str:
    import yaml

    suite = yaml.safe_load((run_dir / "suite.yaml").read_text(encoding="utf-8"))
    return str(suite.get("name", "")) if isinstance(suite, dict) else ""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("skinbench")
    except PackageNotFoundError:
        return "unknown"


def is_bundle(path: str | Path) -> bool:
    path = Path(path)
    return path.is_file() and str(path).endswith(".tar.gz")


@contextlib.contextmanager
def unpacked(paths: list[str | Path]) -> Iterator[list[Path]]:
    """Run directories for ``paths``: folders as they are, bundles verified (:func:`verify_bundle`) and unpacked
    into a temporary folder that lives as long as the context."""
    from .verify import verify_bundle

    if not any(is_bundle(p) for p in paths):
        yield [Path(p) for p in paths]
        return
    with tempfile.TemporaryDirectory(prefix="skinbench-bundles-") as tmp:
        folders = []
        for n, path in enumerate(paths):
            folders.append(verify_bundle(path, into=Path(tmp) / str(n)).run_dir if is_bundle(path) else Path(path))
        yield folders
