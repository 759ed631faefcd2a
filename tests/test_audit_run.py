"""The audit through a run: the measured leak and its cure, audit.json, the CLI, the leaderboard and the site."""
from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skinbench.cli import main
from skinbench.data.audit.copies import leaky_copies
from skinbench.data.audit.label_errors import label_error_audit
from skinbench.execution.runner import run_suite
from skinbench.leaderboard import build_report, read_results
from skinbench.leaderboard.stats import leaderboard_stats, predictions_file


def leaky_suite(csv, **protocol) -> dict:
    return {"name": "leaky",
            "datasets": [{"name": "generic-csv", "params": {"csv": str(csv), "group_column": "patient_id",
                                                             "label_columns": ["label"]}}],
            "backbones": [{"name": "handcrafted", "params": {"size": 32}}], "heads": ["logreg"],
            "protocol": {"seeds": 3, "repeats": 3, "dummy_draws": 200, **protocol}}


def logreg(run) -> pd.Series:
    configurations = leaderboard_stats(read_results(run), n_boot=500).configurations
    return configurations[configurations["head"] == "logreg"].iloc[0]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_permuted_labels_leak_through_copies_until_they_are_joined(tmp_path, seed):
    """Labels permuted in patient blocks carry no signal; a one-pixel copy of every image under a new patient id
    lets logreg score above chance, and joining near-duplicates brings Δ back to chance."""
    csv = leaky_copies(tmp_path / "data", n_patients=40, image_size=32, seed=seed)
    run_suite(leaky_suite(csv), tmp_path / "apart")
    run_suite(leaky_suite(csv, join_near_duplicates=True), tmp_path / "joined")
    apart, joined = logreg(tmp_path / "apart"), logreg(tmp_path / "joined")
    print(f"seed {seed}: Δ vs stratified apart {apart['delta_vs_stratified']:+.3f} ({apart['verdict']}), "
          f"joined {joined['delta_vs_stratified']:+.3f} ({joined['verdict']})")
    assert apart["verdict"] == "above_chance" and apart["delta_vs_stratified_ci_low"] > 0
    assert joined["verdict"] == "chance"
    assert joined["delta_vs_stratified_ci_low"] < 0 < joined["delta_vs_stratified_ci_high"]


def test_the_audit_reaches_audit_json_the_leaderboard_and_the_site(tmp_path, capsys):
    csv = leaky_copies(tmp_path / "data", n_patients=16, image_size=32)
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps(leaky_suite(csv, seeds=2, repeats=1)))
    run = tmp_path / "run"
    assert main(["run", str(suite), "--out", str(run), "--format", "none", "--no-progress"]) == 0
    record = json.loads((run / "audit.json").read_text())
    pairs = record["near_duplicates"]["datasets"][0]["pairs"]
    assert len(pairs) == 32 and all(set(p["sides"]) == {"split 0"} for p in pairs)
    assert record["contamination"][0]["value"] == "unknown" and record["label_errors"] is None
    capsys.readouterr()

    assert main(["audit", str(suite), "--out", str(run), "--n-boot", "200"]) == 0
    printed = capsys.readouterr().out
    assert "32 pair(s) under different patients" in printed and "not a correction" in printed
    record = json.loads((run / "audit.json").read_text())
    assert [t["task"] for t in record["label_errors"]["tasks"]] == ["label"]

    report = build_report(read_results(run), n_boot=200)
    assert set(report.frame["contamination"]) == {"unknown", "no"}  # generic-csv declares no source; dummies
    straddling = sum(p["straddles"] > 0 for p in pairs)
    assert any(f"{straddling} near-duplicate image pair(s)" in w and "join_near_duplicates" in w
               for w in report.warnings)
    assert "contamination" in main_csv(run, capsys)

    site = tmp_path / "site"
    assert main(["publish", str(run), "--out", str(site), "--n-boot", "200"]) == 0
    page = next((site / "tasks").glob("*.html")).read_text()
    assert "Data audit" in page and page.count('class="pair') >= 32
    thumbs = list((site / "audit").glob("*.png"))
    assert len(thumbs) >= 64 and all(f"audit/{t.name}" in page for t in thumbs)


def main_csv(run, capsys) -> str:
    assert main(["leaderboard", str(run), "--format", "csv", "--n-boot", "200"]) == 0
    return capsys.readouterr().out.splitlines()[0]


def test_flipped_test_labels_are_flagged_and_the_sensitivity_table_is_the_leaderboards_own(tmp_path):
    """Flip the stored label of the four test images the model is surest about (in every stored prediction, as a
    wrong label would be): cleanlab flags them, and the verdicts are recomputed by the leaderboard's code."""
    csv = leaky_copies(tmp_path / "data", n_patients=24, image_size=32)
    run = tmp_path / "run"
    run_suite(leaky_suite(csv, seeds=2, repeats=1), run)
    results = read_results(run)
    model = results[results["head"] == "logreg"].iloc[0]
    stored = pd.read_parquet(predictions_file(run, model.cell_id, model.seed, model.split, model.fold))
    proba = stored.filter(like="proba_")
    sure = stored.assign(p=proba.max(axis=1).to_numpy(), label=proba.idxmax(axis=1).str[len("proba_"):].to_numpy())
    sure = sure[sure["label"] == sure["y_true"].astype(str)].nlargest(4, "p")
    other = {c: next(o for o in proba.columns.str[len("proba_"):] if o != c) for c in proba.columns.str[len("proba_"):]}
    flips = dict(zip(sure["image"], (other[c] for c in sure["y_true"].astype(str))))
    for path in (run / "predictions").glob("*.parquet"):
        frame = pd.read_parquet(path)
        frame["y_true"] = [flips.get(i, y) for i, y in zip(frame["image"], frame["y_true"].astype(str))]
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    audit = label_error_audit(results, n_boot=300)
    flagged = {f["image"] for f in audit["tasks"][0]["flagged"]}
    print(f"flagged {len(flagged)}, of the 4 flipped: {len(flagged & set(flips))}")
    assert len(flagged & set(flips)) >= 3
    before = leaderboard_stats(results, n_boot=300).configurations.set_index("cell_id")["verdict"]
    assert all(before[c["cell_id"]] == c["verdict"] != c["verdict_without"] for c in audit["changed"])
    assert "not a correction" in audit["note"]
