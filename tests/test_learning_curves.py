"""Learning curves: subsamples of the training patients only, nested by draw, k shots counted by patient, rows that
resume, and curves that rise when data helps and stay at chance when there is nothing to learn."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinbench.data.curves import curve_points, patient_order, subsample
from skinbench.data.preflight import preflight
from skinbench.data.protocol import Protocol
from skinbench.execution.folds import make_fold
from skinbench.execution.runner import run_suite
from skinbench.leaderboard import read_results
from skinbench.leaderboard.stats.curves import learning_curves
from skinbench.record.store import METRICS, ResultsStore

CURVE = {"train_fractions": [0.25, 0.5, 1.0], "shots": [1, 3], "curve_draws": 2}


def _checked(suite_factory, **protocol):
    return preflight(suite_factory(protocol={"seeds": [0], "dummy_draws": 50, **protocol}))


def test_points_are_row_keys_and_leave_the_cell_identity_alone():
    plain, curved = Protocol(), Protocol(**CURVE)
    assert plain.identity() == curved.identity()
    assert curve_points([0.5, 0.25, 1.0], [3, 1]) == ["fraction=0.25", "fraction=0.5", "shots=1", "shots=3"]
    assert curved.curve_runs()[0] == ("all", 0) and len(curved.curve_runs()) == 1 + 4 * 2


def test_no_test_patient_is_ever_in_a_subsample_and_draws_are_nested(suite_factory):
    checked = _checked(suite_factory, scheme="cv", folds=4, **CURVE)
    ds = checked.datasets[0]
    protocol = checked.suite.protocol
    for task in ds.tasks[:2]:
        for outer in range(4):
            test = set(ds.splits[(0, outer)])
            for draw in range(2):
                kept = {}
                for point, _ in protocol.curve_runs():
                    fold = make_fold(ds, task, 0, outer, 0, protocol, point, draw)
                    train = set(fold.train["group"])
                    assert not train & test and set(fold.test["group"]) == test & set(task.samples["group"].astype(str))
                    assert set(fold.fit["group"]) | set(fold.val["group"]) == train
                    assert fold.patients == len(train)
                    kept[point] = train
                assert kept["fraction=0.25"] <= kept["fraction=0.5"] <= kept["all"]
                assert kept["shots=1"] <= kept["shots=3"] <= kept["all"]


def test_draws_differ_and_repeat_exactly():
    train = pd.DataFrame({"group": [f"p{i // 2}" for i in range(60)], "label": ["a", "b", "c"] * 20,
                          "image": [f"{i}.png" for i in range(60)]})
    first = [patient_order(train, 0, 0, draw) for draw in range(3)]
    assert first == [patient_order(train, 0, 0, draw) for draw in range(3)]
    assert len({tuple(order) for order in first}) == 3


def test_k_shots_reach_k_images_per_class_when_the_training_part_has_them_and_record_fewer_when_not():
    rows = [("p0", "rare")] + [(f"p{i}", "common") for i in range(1, 30)] + [(f"p{i}", "mid") for i in range(30, 36)]
    train = pd.DataFrame({"group": [g for g, _ in rows], "label": [label for _, label in rows],
                          "image": [f"{i}.png" for i in range(len(rows))]})
    order = patient_order(train, 0, 0, 0)
    for k in (1, 4, 8):
        got = subsample(train, f"shots={k}", order)
        assert got.per_class["common"] >= k
        assert got.per_class["mid"] == min(k, 6)
        assert got.per_class["rare"] == 1  # all there is, and the row says so
        assert json.loads(got.per_class_text()) == got.per_class


def test_a_curve_run_stores_each_point_with_what_it_used_and_resumes_after_a_kill(tmp_path, suite_factory):
    suite = suite_factory(protocol={"seeds": [0], "dummy_draws": 50, "train_fractions": [0.5], "shots": [2],
                                    "curve_draws": 2})
    out = tmp_path / "run"
    first = run_suite(suite, out, cache_dir=tmp_path / "cache")
    assert (first["status"] == "ok").all()
    assert set(first["point"]) == {"all", "fraction=0.5", "shots=2"}
    assert first.groupby("point")["draw"].nunique().to_dict() == {"all": 1, "fraction=0.5": 2, "shots=2": 2}
    half = first[first["point"] == "fraction=0.5"]
    full = first[first["point"] == "all"]
    assert (half["n_train_patients"] < full["n_train_patients"].max()).all()
    assert all(sum(json.loads(text).values()) > 0 for text in first["n_train_per_class"])
    log = out / "results.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[: len(lines) // 2]) + lines[len(lines) // 2][:20])  # killed mid-record
    resumed = run_suite(suite, out, cache_dir=tmp_path / "cache")
    key = ["cell_id", "seed", "split", "fold", "point", "draw"]
    pd.testing.assert_frame_equal(resumed[key + list(METRICS)].sort_values(key).reset_index(drop=True),
                                  first[key + list(METRICS)].sort_values(key).reset_index(drop=True))
    assert len(ResultsStore(out).records()) == len(first)  # the kept half was not recomputed


@pytest.mark.slow
def test_local_and_dask_runs_give_identical_curves(tmp_path, suite_factory):
    from skinbench.configuration.suite import Executor

    suite = suite_factory(protocol={"seeds": [0], "dummy_draws": 50, "scheme": "cv", "folds": 3,
                                    "train_fractions": [0.5], "curve_draws": 2})
    local = run_suite(suite, tmp_path / "local", cache_dir=tmp_path / "cache-local")
    dask = run_suite(suite, tmp_path / "dask", cache_dir=tmp_path / "cache-dask", executor=Executor(kind="dask", workers=2))
    key = ["cell_id", "seed", "split", "fold", "point", "draw"]
    columns = key + ["status", "n_train_patients", "n_train_per_class", *METRICS]
    pd.testing.assert_frame_equal(dask[columns].sort_values(key).reset_index(drop=True),
                                  local[columns].sort_values(key).reset_index(drop=True))


def _simulated(tmp_path, n_patients=150, dim=64, shift=0.25):
    """Two balanced classes whose means differ by ``shift`` per dimension in 64-d noise (a nearest-class-mean
    problem that needs many examples), one image per patient; 'null' holds the same labels permuted."""
    rng = np.random.default_rng(0)
    labels = np.array(["a", "b"] * (n_patients // 2))
    rng.shuffle(labels)
    folder = tmp_path / "images"
    folder.mkdir()
    vectors, rows = {}, []
    for i, label in enumerate(labels):
        path = folder / f"{i}.png"
        Image.fromarray(np.full((4, 4, 3), i % 256, np.uint8)).save(path)
        vectors[str(path)] = rng.normal(size=dim) + (shift if label == "b" else -shift)
        rows.append({"image": str(path), "patient_id": f"p{i}", "signal": label})
    table = pd.DataFrame(rows).assign(null=lambda d: rng.permutation(d["signal"].to_numpy()))
    table.to_csv(tmp_path / "data.csv", index=False)
    np.savez(tmp_path / "embeddings.npz", **vectors)
    return {"datasets": [{"name": "generic-csv", "params": {"csv": str(tmp_path / "data.csv"),
                                                             "label_columns": ["signal", "null"]}}],
            "backbones": [{"name": "precomputed", "params": {"file": str(tmp_path / "embeddings.npz")}}],
            "augmenters": ["none"], "heads": [{"name": "logreg", "params": {"tune_threshold": False}}],
            "protocol": {"scheme": "cv", "folds": 5, "seeds": [0], "dummy_draws": 100,
                         "train_fractions": [0.03, 0.06], "curve_draws": 5}}


@pytest.mark.slow
def test_the_curve_rises_where_data_helps_and_stays_at_chance_on_a_null_task(tmp_path):
    run_suite(_simulated(tmp_path), tmp_path / "run", cache_dir=tmp_path / "cache")
    curves = learning_curves(read_results(tmp_path / "run"), n_boot=1000)
    models = curves.points[curves.points["head"] == "logreg"].set_index(["task", "point"])
    signal = curves.summary.set_index("task").loc["signal"]
    assert models.loc[("signal", "fraction=0.03"), "macro_f1"] < models.loc[("signal", "all"), "macro_f1"]
    assert signal["more_data_ci_low"] > 0 and signal["more_data"] == "helps"
    null = models.loc["null"]
    assert (null["delta_vs_stratified_ci_low"] < 0).all() and (null["delta_vs_stratified_ci_high"] > 0).all()
    assert (null["p_vs_stratified_holm"] >= 0.05).all() and (null["p_vs_best_dummy_holm"] >= 0.05).all()


@pytest.mark.slow
def test_shots_draw_one_curve_from_zero_labels_to_full_data(tmp_path):
    """A zero-shot head trains on nothing, so its rows are the same at every size (the 0-label start); text-init
    and logreg learn from k shots per class; the site draws all of them on one learning-curve figure."""
    from skinbench.cli import main
    from skinbench.testing import build_tiny_open_clip

    folder = build_tiny_open_clip(tmp_path / "clip")
    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps({
        "datasets": [{"name": "demo", "params": {"n_patients": 16, "image_size": 32}, "tasks": ["moisture"]}],
        "backbones": [{"name": "open-clip", "params": {"model": str(folder)}}],
        "heads": ["zero-shot", "text-init", "logreg"],
        "protocol": {"seeds": [0], "dummy_draws": 50, "shots": [1, 4], "curve_draws": 2}}))
    assert main(["run", str(suite), "--out", str(tmp_path / "run"), "--no-progress", "--format", "none"]) == 0
    rows = read_results(tmp_path / "run")
    assert (rows["status"] == "ok").all()
    zero_shot = rows[rows["head_label"] == "zero-shot"]
    assert zero_shot["macro_f1"].nunique() == 1  # no label read at any size
    curves = learning_curves(rows, n_boot=200)
    assert set(curves.points["point"]) == {"shots=1", "shots=4", "all"}
    assert set(curves.summary["head_label"]) == {"zero-shot", "text-init", "logreg"}
    assert main(["publish", str(tmp_path / "run"), "--out", str(tmp_path / "site")]) == 0
    svg = next((tmp_path / "site").rglob("learning-curve.svg")).read_text()
    assert "zero-shot (no labelled images)" in svg and "text-init" in svg
