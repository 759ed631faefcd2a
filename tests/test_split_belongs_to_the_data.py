"""The split belongs to the data: the same dataset and protocol give the same test patients in every
suite, whatever tasks or label maps it selects; identical images under two patients join one group."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinbench.datasets.demo import DemoDataset
from skinbench.data.preflight import preflight

BASE = {"backbones": ["handcrafted"], "heads": ["logreg"], "protocol": {"seeds": 1}}


@pytest.fixture
def cosmetic(tmp_path):
    folder = tmp_path / "cosmetic"
    shutil.copytree(DemoDataset(n_patients=30, image_size=16).generate().parent, folder)
    return folder


def test_splits(suite_datasets: list[dict]) -> list[set[str]]:
    checked = preflight({**BASE, "datasets": suite_datasets})
    return [set(ds.splits[(0, 0)]) for ds in checked.datasets]


test_splits.__test__ = False  # a helper, not a test


def test_selecting_one_task_keeps_the_test_patients(cosmetic):
    csv = str(cosmetic / "cosmetic.csv")
    every, = test_splits([{"name": "cosmetic-csv", "params": {"csv": csv}}])
    by_suite, = test_splits([{"name": "cosmetic-csv", "params": {"csv": csv}, "tasks": ["oiliness"]}])
    by_param, = test_splits([{"name": "cosmetic-csv", "params": {"csv": csv, "features": ["oiliness"]}}])
    assert every == by_suite == by_param
    assert len(every) >= 6


def test_label_maps_do_not_move_the_test_patients(cosmetic):
    csv = str(cosmetic / "cosmetic.csv")
    thesis, = test_splits([{"name": "cosmetic-csv", "params": {"csv": csv}}])
    raw, = test_splits([{"name": "cosmetic-csv", "params": {"csv": csv, "label_maps": {}}}])
    assert thesis == raw


def test_generic_csv_label_map_does_not_move_the_test_patients(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for p in range(25):
        grade = int(rng.choice(4, p=[0.5, 0.3, 0.15, 0.05]))
        for i in range(2):
            path = tmp_path / f"p{p}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(path)
            rows.append({"image": path.name, "patient_id": f"P{p}", "grade": grade})
    pd.DataFrame(rows).to_csv(tmp_path / "data.csv", index=False)
    params = {"csv": str(tmp_path / "data.csv"), "label_columns": ["grade"]}
    plain, = test_splits([{"name": "generic-csv", "params": params}])
    mapped, = test_splits([{"name": "generic-csv", "params": {**params, "label_map": {"grade": {"3": 2}}}}])
    assert plain == mapped


def test_identical_images_under_two_patients_join_one_group_with_a_warning(cosmetic):
    table = pd.read_csv(cosmetic / "cosmetic.csv")
    copy = cosmetic / "images" / "copy_of_P001_cheek_texture.png"
    shutil.copy(cosmetic / table.loc[table["patient_id"] == "P001", "texture_img"].iloc[0], copy)
    victim = table.index[table["patient_id"] == "P007"][0]
    table.loc[victim, "texture_img"] = str(copy.relative_to(cosmetic))
    table.to_csv(cosmetic / "cosmetic.csv", index=False)
    checked = preflight({**BASE, "datasets": [{"name": "cosmetic-csv", "params": {"csv": str(cosmetic / "cosmetic.csv")}}]})
    ds = checked.datasets[0]
    groups = set().union(*(set(t.samples["group"]) for t in ds.tasks))
    assert "P007" not in groups and "P001" in groups  # joined under the smaller id
    warning, = [w for w in checked.warnings if "identical image bytes" in w]
    assert "['P001', 'P007']" in warning and str(copy) in warning
    texture = next(t for t in ds.tasks if t.name == "texture").samples
    sides = texture.assign(test=texture["group"].isin(ds.splits[(0, 0)])).groupby("group")["test"].nunique()
    assert (sides == 1).all()


def test_repeats_draw_distinct_patient_disjoint_splits(tmp_path, suite_factory):
    from skinbench.execution.runner import run_suite

    suite = suite_factory(protocol={"seeds": [0, 1], "repeats": 3, "dummy_draws": 50})
    checked = preflight(suite)
    splits = checked.datasets[0].splits
    assert sorted(splits) == [(0, 0), (1, 0), (2, 0)] and len({tuple(s) for s in splits.values()}) == 3
    results = run_suite(suite, tmp_path / "run")
    assert sorted(results["split"].unique()) == [0, 1, 2]
    assert len(results) == 5 * 3 * 2 * 4  # tasks × splits × seeds × (logreg + 3 dummies)
    per_split = results.groupby(["cell_id", "split"])["n_test"].first().unstack()
    assert per_split.notna().all().all()
