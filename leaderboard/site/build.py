"""``skinbench publish``: write the static site for one or more run directories.

The site is plain files (HTML, one small script, one stylesheet, SVG/PNG figures and the
downloads): no server, no CDN, nothing fetched at view time, so it opens from ``file://``
and from any static host. Every user-provided string goes through Jinja2's autoescaping.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import jinja2
import pandas as pd
import yaml
from skinbench.api import SkinbenchError
from skinbench.atomic import utf8_problem
from skinbench.data.protocol import Protocol

from ..bundle import unpacked
from ..stats import N_BOOT, cv_variance_inflation
from .content import (
    Configuration,
    TaskPage,
    predictions,
    task_pages,
)
from ..curves import label_efficiency_table
from ..layout import flat_keys
from .audit import audit_section
from .figures import task_figures
from .names import slug, without_local_paths
from .runs import Run, load_runs

MARKER = ".skinbench-site"
"""Written into every published site: publish only ever replaces a folder that has it (or an empty one)."""
TABLE_CAPTION = (
    "One row per configuration, best mean macro-F1 first; click a header to sort, type to filter. "
    "Intervals are 95% cluster-bootstrap intervals that resample test patients ({n_boot} resamples; each "
    "resample scores every seed and averages them). Δ is paired with the best dummy (most-frequent, uniform "
    "or stratified, whichever scores highest, so a constant predictor is never above chance) on the same "
    "resamples; p is its one-sided p-value, Holm-corrected over every model configuration of the site's "
    "leaderboard, and gives the verdict. The tie group holds the configurations a paired test cannot tell "
    "from the best. ECE (equal-mass bins), Brier and NLL are means over seeds of the stored metrics; "
    "'–' marks a value that does not apply."
)
@dataclass
class Published:
    out: Path
    pages: int
    files: int
    bytes: int
    seconds: float


def publish(run_dirs: list[str | Path], out: str | Path, n_boot: int = N_BOOT, seed: int = 0,
            allow_different_data: bool = False) -> Published:
    """Write the site for ``run_dirs`` into ``out`` (replaced as a whole), and say what was written.

    ``run_dirs`` may name submission bundles (``skinbench bundle``): each is verified, then published like
    a run directory. ``n_boot`` and ``seed`` are the patient bootstrap's (:mod:`skinbench.leaderboard.stats`);
    ``allow_different_data``: see :func:`skinbench.leaderboard.merge_results`."""
    start = time.perf_counter()
    out = Path(out)
    _check_target(out)
    with unpacked(run_dirs) as folders:
        return _publish(folders, out, n_boot, seed, allow_different_data, start)


def _publish(run_dirs: list[Path], out: Path, n_boot: int, seed: int, allow_different_data: bool,
             start: float) -> Published:
    runs = load_runs(run_dirs)
    pages = task_pages(runs, n_boot=n_boot, seed=seed, allow_different_data=allow_different_data)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".skinbench-site-", dir=out.parent))
    try:
        _write_site(staging, runs, pages, n_boot)
        _replace(out, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = [p for p in out.rglob("*") if p.is_file()]
    return Published(out=out, pages=len(pages) + 1, files=len(files), bytes=sum(p.stat().st_size for p in files),
                     seconds=time.perf_counter() - start)


def _check_target(out: Path) -> None:
    odd = utf8_problem(out, "the site folder")
    if odd:
        raise SkinbenchError(odd)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise SkinbenchError(f"{out} exists and is not a site written by `skinbench publish`; "
                             "choose an empty or new folder (publish replaces the whole folder)")


def _replace(out: Path, staging: Path) -> None:
    """Swap the new site in; the old one (a previous publish) is removed only once the new one is complete."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_site(root: Path, runs: list[Run], pages: list[TaskPage], n_boot: int) -> None:
    (root / MARKER).write_text("written by skinbench publish\n")
    for name in ("site.css", "table.js"):
        (root / "assets").mkdir(exist_ok=True)
        (root / "assets" / name).write_bytes(resources.files(__package__).joinpath("static", name).read_bytes())
    downloads = [_write_downloads(root, run) for run in runs]
    by_dir = {str(run.dir): run for run in runs}
    links = {}
    for page in pages:
        for configuration in page.configurations:
            links[configuration.cell_id] = _write_cell_files(root, by_dir[configuration.run_dir], page, configuration)
    site = _site_facts(runs)
    env = _environment()
    for page in pages:
        rendered = env.get_template("task.html").render(
            site=site, root="../", page=page, links=links, figures=task_figures(root, runs, page),
            label_efficiency=label_efficiency_table(page.curves, page.dataset, 2, n_boot) if page.curves else None,
            audit=audit_section(root, page, page.audit),
            table_caption=TABLE_CAPTION.format(n_boot=n_boot) + _cv_caption(page), detectable=_detectable_text(page),
            class_counts=page.class_counts.to_dict("records"), splits=int(page.class_counts["split"].nunique() or 1),
            commits=sorted({str(by_dir[c.run_dir].receipt.get("git_commit") or "unknown") for c in page.configurations}))
        _write_text(root / "tasks" / f"{page.slug}.html", rendered)
    index = env.get_template("index.html").render(
        site=site, root="", pages=pages, datasets=_datasets(pages),
        runs=[_run_facts(run, files) for run, files in zip(runs, downloads)])
    _write_text(root / "index.html", index)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- downloads


def _write_downloads(root: Path, run: Run) -> list[dict]:
    """The run's own files, copied as they are, plus a parquet export when the run has none."""
    folder = root / "data" / slug(run.name)
    folder.mkdir(parents=True)
    listed = []

    def add(name: str, what: str, source: Path) -> None:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.exists():
            shutil.copyfile(source, target)
        else:  # an export the run directory lacks (before the parquet export; a bundle carries the log only)
            rows = run.results.drop(columns=["run_dir"])
            rows.to_csv(target, index=False) if name.endswith(".csv") else rows.to_parquet(target, index=False)
        listed.append({"href": target.relative_to(root).as_posix(), "name": name, "what": what})

    add("results.csv", "raw rows: one per cell, seed and split", run.store.results_csv)
    add("results.parquet", "the same rows, for pandas", run.store.results_parquet)
    add("suite.yaml", "the resolved suite: every default and plugin identity", run.dir / "suite.yaml")
    add("receipt.json", "versions, commit, device, time", run.dir / "receipt.json")
    for path in run.split_files:
        add(f"split/{path.name}", "test patients of the split", path)
    if (run.dir / "generation_log.csv").exists():
        add("generation_log.csv", "provenance of every synthetic image", run.dir / "generation_log.csv")
    return listed


def _write_cell_files(root: Path, run: Run, page: TaskPage, configuration: Configuration) -> dict:
    """Per configuration: its predictions (all seeds and splits in one file) and a suite that re-runs it."""
    folder = root / "data" / slug(run.name)
    frame = predictions(page, configuration)
    prediction_path = folder / "predictions" / f"{configuration.cell_id}.parquet"
    prediction_path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(prediction_path, index=False)
    suite_name = f"rerun-{configuration.cell_id}.yaml"
    suite_path = folder / "rerun" / suite_name
    suite_path.parent.mkdir(parents=True, exist_ok=True)
    suite_path.write_text(yaml.safe_dump(rerun_suite(run, page, configuration), sort_keys=False), encoding="utf-8")
    return {"predictions": prediction_path.relative_to(root).as_posix(), "suite": suite_path.relative_to(root).as_posix(),
            "command": f"skinbench run {suite_name} --out runs/rerun-{configuration.cell_id[:8]} "
                       f"--cell {configuration.cell_id}"}


def rerun_suite(run: Run, page: TaskPage, configuration: Configuration) -> dict:
    """A suite with this configuration's dataset, backbone, augmenter, head and protocol exactly as
    resolved, so its run computes a cell with the same id (and the same scores)."""
    row = configuration.stats
    entries = {}
    for key, label in (("datasets", page.dataset), ("backbones", row["backbone_label"]),
                       ("augmenters", row["augmenter_label"]), ("heads", row["head_label"])):
        entry = run.entry(key, str(label))
        if entry is None:
            raise SkinbenchError(f"{run.dir / 'suite.yaml'}: no {key[:-1]} labelled '{label}'; "
                                 "was the suite file edited after the run?")
        entries[key] = {"name": entry["name"], "params": entry.get("params") or {}}
        if key == "datasets":
            entries[key].update({k: entry[k] for k in ("tasks",) if k in entry})
            if entry.get("display_name"):
                entries[key]["label"] = entry["display_name"]
    protocol = run.suite.get("protocol") or {}
    return {"name": f"rerun-{configuration.cell_id}",
            "description": f"Re-runs {page.task}: {configuration.label} from run {run.name}",
            **{key: [entry] for key, entry in entries.items()},
            "protocol": {k: v for k, v in protocol.items() if k in Protocol.model_fields},  # not seed_effects
            "plugins": run.suite.get("plugins") or {}}


def _cv_caption(page: TaskPage) -> str:
    folds = page.summary.get("n_folds", 1)
    if not folds or folds <= 1:
        return ""
    return (f" Under {folds}-fold cross-validation the resamples draw from all patients' out-of-fold predictions "
            f"and the standard error is widened by √{cv_variance_inflation(folds):.2f} (Nadeau and Bengio's correction for "
            "the folds' shared training patients).")


def _detectable_text(page: TaskPage) -> str:
    mde, mde_holm = page.summary.get("mde_delta"), page.summary.get("mde_delta_holm")
    sizes = f"{page.test_images()} test images from {page.test_patients()} patients"
    folds = page.summary.get("n_folds", 1)
    if folds and folds > 1:
        sizes += (f" (patient-grouped {folds}-fold cross-validation: every patient is tested once, by a model "
                  "that never saw them)")
    if mde is None or pd.isna(mde):
        return f"{sizes}; the minimum detectable Δ needs stored predictions of the stratified dummy and a model."
    holdout = page.summary.get("mde_delta_holm_holdout")
    compared = (f" A holdout that tests 20% of the same patients would need {holdout:.2f} (projected from this run's "
                "standard errors)." if holdout is not None and pd.notna(holdout) else "")
    return (f"With {sizes}, only a Δ vs stratified of at least {mde:.2f} is detectable with 80% power "
            f"(one comparison at level 0.05), and {mde_holm:.2f} for the best of the leaderboard's configurations "
            f"after Holm's correction.{compared} Rows in yellow: a class with no training image or fewer than 3 "
            "test images.")


# ---------------------------------------------------------------- index and provenance


def _datasets(pages: list[TaskPage]) -> list[dict]:
    grouped: dict[str, dict] = {}
    for page in pages:
        grouped.setdefault(page.dataset, {"name": page.dataset_name, "pages": []})["pages"].append(page)
    return list(grouped.values())


def _site_facts(runs: list[Run]) -> dict:
    return {"version": _version(),
            "published": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "suites": list(dict.fromkeys(str(r.suite.get("name", r.name)) for r in runs)),
            "commits": list(dict.fromkeys(str(r.receipt.get("git_commit") or "unknown") for r in runs))}


def _run_facts(run: Run, files: list[dict]) -> dict:
    receipt = run.receipt
    packages = receipt.get("packages") or {}
    return {
        "name": run.name, "suite_name": run.suite.get("name", ""), "files": files,
        "commit": receipt.get("git_commit") or "unknown (not run from a git checkout)",
        "version": packages.get("skinbench") or "unknown", "time": receipt.get("time", "unknown"),
        "device": receipt.get("device", "unknown"), "python": receipt.get("python", "?"),
        "platform": receipt.get("platform", "?"),
        "packages": sorted((str(k), str(v)) for k, v in packages.items()),
        "splits": sorted(run.split_digests().items()),
        "plugins": _plugins(run),
        "suite_text": without_local_paths((run.dir / "suite.yaml").read_text(encoding="utf-8")),
    }


def _plugins(run: Run) -> list[dict]:
    """Every plugin of the suite with its resolved identity (weights hashes are among the artefacts)."""
    out = []
    for key in ("datasets", "backbones", "augmenters", "heads"):
        for entry in run.suite.get(key) or []:
            identity = entry.get("identity") or {}
            out.append({"kind": key[:-1], "label": without_local_paths(str(entry.get("display_name") or entry.get("label", ""))),
                        "package": identity.get("package", ""), "version": identity.get("version", ""),
                        "code": identity.get("code", ""), "digest": identity.get("digest", ""),
                        "artefacts": sorted((k, without_local_paths(str(v)))
                                            for k, v in flat_keys(identity.get("artefacts") or {}).items())})
    return out




def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("skinbench")
    except PackageNotFoundError:
        return "unknown"
