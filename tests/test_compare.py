"""`skinbench compare`: identical runs agree, an altered prediction and a flipped verdict are found, runs on
other patients are compared by their intervals only, label-matched configurations say what differs."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from leaderboard_fixtures import patients, write_task
from skinbench.cli import main
from skinbench.execution.runner import run_suite
from skinbench.leaderboard.compare import compare_runs
from skinbench.record.store import ResultsStore

BOOT = 200
MODEL = ("handcrafted", "none", "logreg")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from conftest import tiny_suite

    suite = tiny_suite(augmenters=[{"name": "none"}, {"name": "classical"}])
    suite["datasets"][0]["tasks"] = ["moisture", "texture"]
    out = tmp_path_factory.mktemp("compare") / "a"
    run_suite(suite, out)
    return out


def _copy(run, tmp_path, name="b"):
    return shutil.copytree(run, tmp_path / name)


def _compare_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["compare", *map(str, args), "--n-boot", str(BOOT)])
    out, err = capsys.readouterr()
    return code, out, err


def _model_row(run, task="moisture", augmenter="none"):
    rows = ResultsStore(run).read()
    return rows[(rows["task"] == task) & (rows["augmenter"] == augmenter) & (rows["head"] == "logreg")].iloc[0]


def test_identical_runs_compare_as_identical(demo_run, tmp_path, capsys):
    copy = _copy(demo_run, tmp_path)
    code, out, err = _compare_cli(capsys, demo_run, copy, "--format", "json", "--fail-on-flip")
    assert code == 0
    record = json.loads(out)
    assert record["summary"].startswith("4 of 4 configurations agree within their intervals; no verdict flips")
    pairs = pd.DataFrame(record["pairs"])
    assert (pairs["matched_by"] == "identity").all() and pairs["paired"].all() and pairs["agree"].all()
    assert (pairs["delta"] == 0).all() and (pairs["delta_ci_low"] == 0).all() and (pairs["delta_ci_high"] == 0).all()
    assert (pairs["same_labels"] == 1).all() and (pairs["max_proba_diff"] == 0).all()
    assert (pairs["images_compared"] == 16).all()  # 8 test images × 2 seeds
    assert all(t["same_test_patients"] for t in record["tasks"])
    assert "agree within their intervals" in err


def test_an_altered_prediction_is_found_image_by_image(demo_run, tmp_path):
    copy = _copy(demo_run, tmp_path)
    row = _model_row(copy)
    path = ResultsStore(copy).predictions_path(row["cell_id"], 1)
    frame = pd.read_parquet(path)
    classes = [c[len("proba_"):] for c in frame if c.startswith("proba_")]
    frame.loc[:2, "y_pred"] = [classes[0] if p != classes[0] else classes[1] for p in frame.loc[:2, "y_pred"]]
    frame.loc[0, f"proba_{classes[0]}"] += 0.25
    frame.to_parquet(path, index=False)
    pairs = compare_runs(demo_run, copy, n_boot=BOOT).pairs.set_index("cell_id_a")
    altered = pairs.loc[row["cell_id"]]
    assert altered["same_labels"] == pytest.approx(13 / 16)  # 3 of 16 images (2 seeds × 8) changed
    assert altered["max_proba_diff"] == pytest.approx(0.25)
    assert (pairs.drop(index=row["cell_id"])["same_labels"] == 1).all()


@pytest.fixture
def verdict_flip(tmp_path):
    """Two run directories of the same cells: in B, one configuration predicts every test image right."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 80)
    chance = [np.where(rng.random(80) < 0.5, y, 1 - y) for _ in range(2)]
    steady = [np.where(rng.random(80) < 0.8, y, 1 - y) for _ in range(2)]
    other = ("other", "none", "logreg")
    write_task(tmp_path / "a", patients(40), y, {MODEL: chance, other: steady})
    write_task(tmp_path / "b", patients(40), y, {MODEL: [y, y], other: steady})
    return tmp_path / "a", tmp_path / "b"


def test_a_flipped_verdict_is_reported_and_fails_the_check(verdict_flip, capsys):
    a, b = verdict_flip
    code, out, err = _compare_cli(capsys, a, b, "--fail-on-flip", "--format", "csv")
    assert code == 1
    pairs = pd.read_csv(__import__("io").StringIO(out)).set_index("configuration")
    flipped = pairs.loc["handcrafted · none · logreg"]
    assert (flipped["verdict_a"], flipped["verdict_b"]) == ("chance", "above_chance") and flipped["verdict_flip"]
    assert (flipped["tie_a"], flipped["tie_b"]) == ("below best", "tied with best")
    assert flipped["delta_ci_low"] > 0.2 and not flipped["agree"] and flipped["paired"]
    steady = pairs.loc["other · none · logreg"]
    assert steady["agree"] and steady["delta"] == 0 and steady["same_labels"] == 1
    assert "1 of 2 configurations agree within their intervals; 1 verdict flip: moisture handcrafted" in err
    code, _, _ = _compare_cli(capsys, a, b)
    assert code == 0  # without --fail-on-flip a flip is reported, not an error


def test_runs_on_other_test_patients_compare_intervals_only(tmp_path, capsys):
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 40)
    write_task(tmp_path / "a", patients(20), y, {MODEL: [y]})
    write_task(tmp_path / "b", np.array([f"q{p}" for p in patients(20)]), y, {MODEL: [y]})
    code, out, _ = _compare_cli(capsys, tmp_path / "a", tmp_path / "b")
    assert code == 0
    assert "different test patients or labels (20 vs 20 patients): the runs' intervals are compared" in out
    comparison = compare_runs(tmp_path / "a", tmp_path / "b", n_boot=BOOT)
    pair = comparison.pairs.iloc[0]
    assert not pair["paired"] and np.isnan(pair["delta"]) and pair["agree"]  # same scores: the intervals overlap
    assert pair["images_compared"] == 40 and pair["same_labels"] == 1  # the same image names, predicted alike


def test_configurations_matched_by_label_name_what_differs(demo_run, tmp_path):
    copy = _copy(demo_run, tmp_path)
    row = _model_row(copy)
    store = ResultsStore(copy)
    records = store.records()
    store.log.unlink()
    for record in records:  # B's backbone ran in half precision: another identity, hence another cell id
        if record["cell_id"] == row["cell_id"]:
            old = store.predictions_path(record["cell_id"], record["seed"])
            record["cell_id"] = "f" * 16
            old.rename(store.predictions_path(record["cell_id"], record["seed"]))
        store.append(record)
    suite = yaml.safe_load((copy / "suite.yaml").read_text())
    suite["backbones"][0]["identity"]["artefacts"]["precision"] = "float16"
    (copy / "suite.yaml").write_text(yaml.safe_dump(suite))
    receipt = json.loads((copy / "receipt.json").read_text())
    receipt["packages"]["torch"], receipt["device"], receipt["torch_threads"] = "0.0.1", "cuda: a test GPU", 64
    (copy / "receipt.json").write_text(json.dumps(receipt))
    comparison = compare_runs(demo_run, copy, n_boot=BOOT)
    pair = comparison.pairs.set_index("cell_id_a").loc[row["cell_id"]]
    assert pair["matched_by"] == "label" and pair["cell_id_b"] == "f" * 16
    assert pair["differs"] == "backbone artefacts.precision: absent → float16"
    assert pair["paired"] and pair["delta"] == 0 and pair["same_labels"] == 1
    assert any(line.startswith("torch: ") and line.endswith("→ 0.0.1") for line in comparison.environment)
    assert any(line.endswith("→ cuda: a test GPU") for line in comparison.environment)
    assert any(line.startswith("torch_threads: ") and line.endswith("→ 64") for line in comparison.environment)


def test_bad_input_is_refused_with_exit_2_and_no_traceback(demo_run, tmp_path, capsys):
    code, _, err = _compare_cli(capsys, demo_run, tmp_path / "nowhere")
    assert code == 2 and "nowhere is not a directory" in err and "Traceback" not in err
    copy = _copy(demo_run, tmp_path)
    with open(copy / "results.jsonl", "ab") as fh:
        fh.write(b'{"row": {"cell_id": "x"}, "sha": "0", "v": 2}\n')
    code, _, err = _compare_cli(capsys, demo_run, copy)
    assert code == 2 and "results.jsonl line 21: checksum mismatch" in err and "Traceback" not in err
