"""``skinbench compare``: do two runs of "the same" suite agree, and which verdicts flip?

Why: the same suite run on two machines (other library versions, thread counts, precision or
device) gives the same cell ids and can still score differently, and nothing else says whether the
two leaderboards agree within their intervals. Configurations are matched by cell id (the resolved
identity), else by label, and then everything that differs between the two identities is listed.

- Same test patients (same splits, patients and labels): the paired difference of macro-F1 (B − A)
  on the task's shared patient resamples (both runs' predictions scored on one plan, so the interval
  is paired like every other Δ of the leaderboard), Holm-corrected over both directions of every
  compared configuration; image-level agreement (share of identical predicted labels, largest
  probability difference) over the (seed, split, fold) both runs stored.
- Different test patients: said so, and only the two intervals are compared (overlap or not).
- Each run's own verdicts and tie groups (its own leaderboard statistics) are set side by side: a
  *flip* is a verdict or tie group that changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from skinbench.api import DataError, SkinbenchError
from skinbench.record.store import ResultsStore
from skinbench.vocabulary import DUMMY_HEADS

from .stats import (
    ALPHA,
    N_BOOT,
    LeaderboardStats,
    TaskPredictions,
    bootstrap_task,
    directional_holm,
    full_data,
    leaderboard_metrics,
    leaderboard_stats,
    load_predictions,
    predictions_file,
    task_plan,
)
from .layout import flat_keys
from .tables import read_results

LABELS = ["dataset", "task", "backbone_label", "augmenter_label", "head_label"]
KINDS = {"backbone_label": "backbones", "augmenter_label": "augmenters", "head_label": "heads", "dataset": "datasets"}


@dataclass
class Run:
    """One side of a comparison: its rows, its leaderboard statistics and its header files."""

    dir: Path
    results: pd.DataFrame
    stats: LeaderboardStats
    suite: dict
    receipt: dict


@dataclass
class Comparison:
    a: Run
    b: Run
    pairs: pd.DataFrame                 # one row per matched model configuration
    environment: list[str]              # how the two runs' receipts differ
    tasks: pd.DataFrame                 # per task: whether both runs tested the same patients
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)

    @property
    def flips(self) -> pd.DataFrame:
        return self.pairs[self.pairs["verdict_flip"] | self.pairs["tie_flip"]]

    def summary(self) -> str:
        """"17 of 20 configurations agree within their intervals; 2 verdicts flip: …"."""
        n, agree = len(self.pairs), int(self.pairs["agree"].sum())
        parts = [f"{agree} of {n} configuration{'s' if n != 1 else ''} agree within their intervals"]
        for column, what in (("verdict", "verdict"), ("tie", "tie group")):
            flipped = self.pairs[self.pairs[f"{column}_flip"]]
            if len(flipped):
                parts.append(f"{len(flipped)} {what}{'s' if len(flipped) != 1 else ''} flip: " + "; ".join(
                    f"{r.task} {r.configuration} ({r[f'{column}_a']} → {r[f'{column}_b']})" for _, r in flipped.iterrows()))
            else:
                parts.append(f"no {what} flips")
        unmatched = len(self.only_a) + len(self.only_b)
        if unmatched:
            parts.append(f"{unmatched} configuration(s) in one run only")
        return "; ".join(parts)


def compare_runs(run_a: str | Path, run_b: str | Path, n_boot: int = N_BOOT, seed: int = 0,
                 alpha: float = ALPHA) -> Comparison:
    """Match the model configurations of two run directories and compare them (see the module docstring)."""
    a, b = load_run(run_a, n_boot, seed, alpha), load_run(run_b, n_boot, seed, alpha)
    models_a, models_b = _models(a), _models(b)
    pairs, only_a, only_b = _match(models_a, models_b)
    if pairs.empty:
        raise DataError(f"no model configuration of {a.dir} matches one of {b.dir} by cell id or by label "
                        "(dataset, task, backbone, augmenter, head): are they runs of the same suite?")
    pairs["differs"] = [_identity_differences(a, b, ra, rb) if how == "label" else ""
                        for how, ra, rb in zip(pairs["matched_by"], pairs["row_a"], pairs["row_b"])]
    tasks = _paired_scores(a, b, pairs, n_boot, seed, alpha)
    _agreement(a, b, pairs)
    _verdicts(pairs)
    pairs = pairs.drop(columns=["row_a", "row_b"])
    return Comparison(a, b, pairs, _environment(a, b), tasks, only_a, only_b)


def load_run(run_dir: str | Path, n_boot: int = N_BOOT, seed: int = 0, alpha: float = ALPHA) -> Run:
    """A run directory's rows (refusing damaged records), statistics, resolved suite and receipt."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SkinbenchError(f"{run_dir} is not a directory: give a run directory written by `skinbench run`")
    results = full_data(read_results(run_dir))  # learning-curve rows are not on the leaderboard
    store = ResultsStore(run_dir)
    store.records()
    if store.problems:
        raise DataError([f"{p}; compare refuses a damaged run directory (`skinbench run` on it again moves the "
                         "record aside and recomputes it)" for p in store.problems])
    return Run(run_dir, results, leaderboard_stats(results, n_boot=n_boot, seed=seed, alpha=alpha),
               _header(run_dir / "suite.yaml", yaml.safe_load), _header(run_dir / "receipt.json", _json))


def _json(text: str):
    import json

    return json.loads(text)


def _header(path: Path, parse) -> dict:
    if not path.exists():
        return {}
    try:
        data = parse(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"{path}: cannot be read ({exc}); the run directory is damaged") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping; the run directory is damaged")
    return data


def _models(run: Run) -> pd.DataFrame:
    configs = run.stats.configurations
    return configs[~configs["head"].isin(DUMMY_HEADS)].reset_index(drop=True)


def _match(models_a: pd.DataFrame, models_b: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Pairs by cell id, then the rest by label; what is left is listed by label."""
    rows, used_b = [], set()
    by_cell = {c: i for i, c in enumerate(models_b["cell_id"])}
    by_label = {tuple(r[LABELS]): i for i, r in models_b.iterrows()}
    left_a = []
    for i, ra in models_a.iterrows():
        j, how = by_cell.get(ra["cell_id"]), "identity"
        if j is None:
            j, how = by_label.get(tuple(ra[LABELS])), "label"
        if j is None or j in used_b:
            left_a.append(_name(ra))
            continue
        used_b.add(j)
        rb = models_b.loc[j]
        rows.append({**{k: ra[k] for k in LABELS}, "configuration": _name(ra, with_task=False), "matched_by": how,
                     "cell_id_a": ra["cell_id"], "cell_id_b": rb["cell_id"], "row_a": ra, "row_b": rb})
    left_b = [_name(r) for j, r in models_b.iterrows() if j not in used_b]
    return pd.DataFrame(rows), left_a, left_b


def _name(row: pd.Series, with_task: bool = True) -> str:
    name = f"{row['backbone_label']} · {row['augmenter_label']} · {row['head_label']}"
    return f"{row['task']}: {name}" if with_task else name


# ---------------------------------------------------------------- what differs


def _identity_differences(a: Run, b: Run, row_a: pd.Series, row_b: pd.Series) -> str:
    """Every field of the resolved identities (suite.yaml) and the data fingerprint that differ, e.g.
    ``backbone artefacts.weights_sha256: 1f2e… → 9a0b…``."""
    found = []
    fingerprints = [_fingerprint(run, row) for run, row in ((a, row_a), (b, row_b))]
    if fingerprints[0] != fingerprints[1]:
        found.append(f"data fingerprint: {fingerprints[0]} → {fingerprints[1]}")
    for column, key in KINDS.items():
        ids = [flat_keys((_entry(run, key, str(row[column])) or {}).get("identity") or {})
               for run, row in ((a, row_a), (b, row_b))]
        for name in sorted(set(ids[0]) | set(ids[1])):
            if name != "digest" and ids[0].get(name) != ids[1].get(name):
                found.append(f"{key[:-1]} {name}: {_short(ids[0].get(name))} → {_short(ids[1].get(name))}")
    protocol = [flat_keys(run.suite.get("protocol") or {}) for run in (a, b)]
    found += [f"protocol {k}: {_short(protocol[0].get(k))} → {_short(protocol[1].get(k))}"
              for k in sorted(set(protocol[0]) | set(protocol[1])) if protocol[0].get(k) != protocol[1].get(k)]
    return "; ".join(found) or "the cell ids differ but suite.yaml records no difference (core code or protocol)"


def _fingerprint(run: Run, row: pd.Series) -> str:
    rows = run.results[run.results["cell_id"] == row["cell_id"]]
    return str(rows["data_fingerprint"].iloc[0]) if len(rows) else "?"


def _entry(run: Run, key: str, label: str) -> dict | None:
    return next((e for e in run.suite.get(key) or [] if str(e.get("label")) == label), None)




def _short(value: object) -> str:
    text = "absent" if value is None else str(value)
    return text if len(text) <= 64 else text[:24] + "…"


def _environment(a: Run, b: Run) -> list[str]:
    """Receipt fields that differ: commit, device, torch threads, Python, platform and every package version."""
    fields = [(name, a.receipt.get(name), b.receipt.get(name)) for name in ("git_commit", "device", "torch_threads", "python",
                                                                             "platform")]
    packages = [a.receipt.get("packages") or {}, b.receipt.get("packages") or {}]
    fields += [(name, packages[0].get(name), packages[1].get(name)) for name in sorted(set(packages[0]) | set(packages[1]))]
    return [f"{name}: {_short(x)} → {_short(y)}" for name, x, y in fields if x != y]


# ---------------------------------------------------------------- paired scores


def _paired_scores(a: Run, b: Run, pairs: pd.DataFrame, n_boot: int, seed: int, alpha: float) -> pd.DataFrame:
    """Fills the pairs' macro-F1 columns, paired Δ where both runs tested the same patients; per task, says which."""
    loaded_a, loaded_b = load_predictions(a.results), load_predictions(b.results)
    for column in ("delta", "delta_ci_low", "delta_ci_high", "p_higher", "p_lower"):
        pairs[column] = np.nan
    tasks = []
    for (dataset, task), group in pairs.groupby(["dataset", "task"], sort=False):
        pa, pb = loaded_a.get((dataset, task)), loaded_b.get((dataset, task))
        same = pa is not None and pb is not None and _same_test_part(pa, pb)
        tasks.append({"dataset": dataset, "task": task, "same_test_patients": same,
                      "test_patients_a": _patient_count(pa), "test_patients_b": _patient_count(pb)})
        if not same:
            continue
        joined = _joined(pa, pb, set(group["cell_id_a"]), set(group["cell_id_b"]))
        draws = bootstrap_task(joined, task_plan(pa, n_boot, seed), leaderboard_metrics(pa.ordinal), seed)
        for index in group.index:
            left, right = draws.get("a\x00" + pairs.at[index, "cell_id_a"]), draws.get("b\x00" + pairs.at[index, "cell_id_b"])
            if left is None or right is None:
                continue
            delta = right.minus(left, alpha=alpha)
            pairs.loc[index, ["delta", "delta_ci_low", "delta_ci_high", "p_higher", "p_lower"]] = [
                delta.value, delta.low, delta.high, delta.p_greater, delta.p_less]
    for side, run, column in (("a", a, "row_a"), ("b", b, "row_b")):
        for name in ("macro_f1_mean", "macro_f1_ci_low", "macro_f1_ci_high", "rank", "rank_ci_low", "rank_ci_high"):
            pairs[f"{name}_{side}"] = [row.get(name, np.nan) for row in pairs[column]]
    pairs["p_higher_holm"], pairs["p_lower_holm"] = directional_holm(pairs["p_higher"].to_numpy(float),
                                                                     pairs["p_lower"].to_numpy(float), alpha)
    paired = pairs["delta"].notna()
    differs = (pairs["p_higher_holm"] < alpha) | (pairs["p_lower_holm"] < alpha)
    overlap = ~((pairs["macro_f1_ci_low_a"] > pairs["macro_f1_ci_high_b"])
                | (pairs["macro_f1_ci_low_b"] > pairs["macro_f1_ci_high_a"]))
    pairs["paired"] = paired
    pairs["agree"] = np.where(paired, ~differs, overlap)
    return pd.DataFrame(tasks)


def _patient_count(loaded: TaskPredictions | None) -> int:
    return 0 if loaded is None else int(sum(len(p) for p in loaded.patients.values()))


def _same_test_part(a: TaskPredictions, b: TaskPredictions) -> bool:
    """Same classes, splits, patients and per-patient labels (the predictions' images may be ordered otherwise)."""
    if a.classes != b.classes or set(a.patients) != set(b.patients) or a.folds != b.folds:
        return False
    k = len(a.classes)
    for split, patients in a.patients.items():
        if set(patients) != set(b.patients[split]):
            return False
        ref_a, ref_b = next(iter(a.files[split].values())), next(iter(b.files[split].values()))
        index = patients.get_indexer(b.patients[split])
        counts_a = np.bincount(ref_a.patient * k + ref_a.y, minlength=len(patients) * k)
        counts_b = np.bincount(index[ref_b.patient] * k + ref_b.y, minlength=len(patients) * k)
        if not np.array_equal(counts_a, counts_b):
            return False
    return True


def _joined(a: TaskPredictions, b: TaskPredictions, cells_a: set[str], cells_b: set[str]) -> TaskPredictions:
    """Both runs' predictions of the compared cells as one task (B's patients renumbered into A's), so one
    resample plan scores both and their difference is paired."""
    files = {}
    for split, patients in a.patients.items():
        index = patients.get_indexer(b.patients[split])
        files[split] = {("a\x00" + c, s): f for (c, s), f in a.files[split].items() if c in cells_a}
        for (c, s), f in b.files[split].items():
            if c in cells_b:
                files[split][("b\x00" + c, s)] = type(f)(index[f.patient], f.y, f.pred, f.prior, f.columns, f.part,
                                                         f.folds)
    return TaskPredictions(a.dataset, a.task, a.classes, a.ordinal, a.patients, files, [], a.folds)


# ---------------------------------------------------------------- images and verdicts


def _agreement(a: Run, b: Run, pairs: pd.DataFrame) -> None:
    """Share of identical predicted labels and largest probability difference, image by image, over the
    (seed, split, fold) both runs stored."""
    same, gap, images = [], [], []
    for cell_a, cell_b in zip(pairs["cell_id_a"], pairs["cell_id_b"]):
        rows_a = _stored(a, cell_a)
        rows_b = _stored(b, cell_b)
        equal = compared = 0
        largest = np.nan
        for key in sorted(set(rows_a) & set(rows_b)):
            fa, fb = pd.read_parquet(rows_a[key]), pd.read_parquet(rows_b[key])
            if "image" not in fa or "image" not in fb:
                continue
            joined = fa.merge(fb, on="image", suffixes=("_a", "_b"))
            equal += int((joined["y_pred_a"].astype(str) == joined["y_pred_b"].astype(str)).sum())
            compared += len(joined)
            proba = [c[:-2] for c in joined if c.startswith("proba_") and c.endswith("_a") and f"{c[:-2]}_b" in joined]
            if proba and len(joined):
                diff = np.abs(joined[[f"{c}_a" for c in proba]].to_numpy(float) - joined[[f"{c}_b" for c in proba]].to_numpy(float))
                largest = np.nanmax([largest, diff.max()]) if np.isfinite(largest) else float(diff.max())
        same.append(equal / compared if compared else np.nan)
        gap.append(largest)
        images.append(compared)
    pairs["same_labels"], pairs["max_proba_diff"], pairs["images_compared"] = same, gap, images


def _stored(run: Run, cell: str) -> dict[tuple[int, int, int], Path]:
    rows = run.results[(run.results["cell_id"] == cell) & (run.results["status"] == "ok")]
    paths = {(int(r.seed), int(r.split), int(r.fold)): predictions_file(r.run_dir, cell, r.seed, r.split, r.fold)
             for r in rows.itertuples(index=False)}
    return {key: path for key, path in paths.items() if path.exists()}


def _verdicts(pairs: pd.DataFrame) -> None:
    for side in ("a", "b"):
        rows = pairs[f"row_{side}"]
        pairs[f"verdict_{side}"] = [r.get("verdict") if isinstance(r.get("verdict"), str) else "none" for r in rows]
        pairs[f"tie_{side}"] = [_tie(r) for r in rows]
    pairs["verdict_flip"] = pairs["verdict_a"] != pairs["verdict_b"]
    pairs["tie_flip"] = pairs["tie_a"] != pairs["tie_b"]


def _tie(row: pd.Series) -> str:
    """The tie group: with the best (the best itself included) or below it; which one is best is the rank's."""
    tied = row.get("tied_with_best")
    if not isinstance(tied, (bool, np.bool_)):
        return "none"
    return "tied with best" if tied else "below best"
