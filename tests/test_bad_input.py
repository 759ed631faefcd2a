"""Bad input is reported before any compute, every problem at once, and nothing stored is lost."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from skinbench.api import ConfigError, DataError
from skinbench.cli import main
from skinbench.datasets.demo import DemoDataset
from skinbench.execution.runner import run_suite


@pytest.fixture
def cosmetic_copy(tmp_path):
    """A private copy of a small demo dataset in the cosmetic wide-CSV format."""
    source = DemoDataset(n_patients=12, image_size=24).generate().parent
    folder = tmp_path / "cosmetic"
    shutil.copytree(source, folder)
    return folder


def cosmetic_suite(folder, **protocol):
    return {"datasets": [{"name": "cosmetic-csv", "params": {"csv": str(folder / "cosmetic.csv")}}],
            "backbones": [{"name": "handcrafted", "params": {"size": 24}}], "heads": ["logreg"],
            "protocol": {"seeds": 1, "dummy_draws": 50, **protocol}}


def test_every_problem_is_reported_and_existing_results_are_untouched(tmp_path, cosmetic_copy):
    out = tmp_path / "run"
    run_suite(cosmetic_suite(cosmetic_copy), out)
    before = (out / "results.csv").read_bytes()
    csv = cosmetic_copy / "cosmetic.csv"
    table = pd.read_csv(csv)
    (cosmetic_copy / table.loc[0, "texture_img"]).unlink()                       # missing image, line 2
    (cosmetic_copy / table.loc[1, "moisture_img"]).write_bytes(b"not a png")     # corrupt image, line 3
    table.loc[2, "elasticity"] = 7                                               # unknown label, line 4
    table.to_csv(csv, index=False)
    with pytest.raises(DataError) as info:
        run_suite(cosmetic_suite(cosmetic_copy), out)
    message = str(info.value)
    assert f"{cosmetic_copy / table.loc[0, 'texture_img']}: image file is missing" in message
    assert "line 2" in message
    assert str(cosmetic_copy / table.loc[1, "moisture_img"]) in message and "cannot be read" in message
    assert "line 4, column 'elasticity': label 7 is not one of [-1, 0, 1]" in message
    assert (out / "results.csv").read_bytes() == before


def test_missing_column_lists_present_ones(tmp_path, cosmetic_copy):
    csv = cosmetic_copy / "cosmetic.csv"
    pd.read_csv(csv).drop(columns=["texture"]).to_csv(csv, index=False)
    with pytest.raises(DataError, match="texture") as info:
        run_suite(cosmetic_suite(cosmetic_copy), tmp_path / "run")
    assert "patient_id" in str(info.value)
    assert not (tmp_path / "run").exists()


def test_empty_class_is_reported(tmp_path, cosmetic_copy):
    csv = cosmetic_copy / "cosmetic.csv"
    table = pd.read_csv(csv)
    table["texture"] = table["texture"].replace(1, 0)
    table.to_csv(csv, index=False)
    with pytest.raises(DataError, match="task 'texture': class 1 has no samples"):
        run_suite(cosmetic_suite(cosmetic_copy), tmp_path / "run")


def test_patient_on_both_sides_of_a_given_split(tmp_path, cosmetic_copy):
    csv = cosmetic_copy / "cosmetic.csv"
    table = pd.read_csv(csv)
    table["split"] = ["test" if i % 2 else "train" for i in range(len(table))]  # splits each patient's two regions
    table.to_csv(csv, index=False)
    with pytest.raises(DataError, match="patient 'P000' has rows in both train and test"):
        run_suite(cosmetic_suite(cosmetic_copy, split_column="split"), tmp_path / "run")


def test_a_published_split_column_is_used_exactly(tmp_path, cosmetic_copy):
    csv = cosmetic_copy / "cosmetic.csv"
    table = pd.read_csv(csv)
    chosen = {"P001", "P004", "P007"}
    table["split"] = ["test" if p in chosen else "train" for p in table["patient_id"]]
    table.to_csv(csv, index=False)
    results = run_suite(cosmetic_suite(cosmetic_copy, split_column="split"), tmp_path / "run")
    import json
    split_file, = (tmp_path / "run" / "split").glob("cosmetic-csv-*.json")
    assert set(json.loads(split_file.read_text())["test_groups"]) == chosen
    assert (results["n_test"] == 6).all()  # 3 patients × 2 regions


def test_unknown_plugin_and_parameter_list_what_exists(tmp_path, suite_factory):
    bad = suite_factory(backbones=[{"name": "dinov9"}], heads=[{"name": "logreg", "params": {"lr": 1}}])
    with pytest.raises(ConfigError) as info:
        run_suite(bad, tmp_path / "run")
    message = str(info.value)
    assert "unknown backbone 'dinov9'; known backbones:" in message and "handcrafted" in message
    assert "head 'logreg': unknown key 'lr'; known: C_grid" in message
    assert not (tmp_path / "run").exists()


def test_malformed_yaml_exits_non_zero_with_the_file_named(tmp_path, capsys):
    suite = tmp_path / "broken.yaml"
    suite.write_text("datasets: [demo\nheads: {")
    assert main(["run", str(suite), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert str(suite) in err and "malformed YAML" in err


def test_fixing_the_data_makes_new_cells(tmp_path, cosmetic_copy):
    """Same parameters, corrected data: every cell of the dataset is recomputed, since the split
    is chosen from all tasks; the old rows stay in results.csv under their old cell ids."""
    out = tmp_path / "run"
    first = run_suite(cosmetic_suite(cosmetic_copy), out)
    csv = cosmetic_copy / "cosmetic.csv"
    table = pd.read_csv(csv)
    table.loc[table.index[table["texture"] == 0][0], "texture"] = 1
    table.to_csv(csv, index=False)
    second = run_suite(cosmetic_suite(cosmetic_copy), out)
    assert len(second) == 2 * len(first)
    assert not set(first["cell_id"]) & set(second["cell_id"].iloc[len(first):])
    assert run_suite(cosmetic_suite(cosmetic_copy), out).shape == second.shape  # and then nothing more
    from skinbench.leaderboard import read_results
    shown = read_results(out)
    assert len(shown) == len(first) and set(shown["cell_id"]) == set(second["cell_id"].iloc[len(first):])
