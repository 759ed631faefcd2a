"""Every class of bad input a new user tried gets a message naming the key, file, row or plugin and
what to fix, exit code 2, and no traceback."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from plugins_for_tests import BadInputPlugins
from skinbench.api import ConfigError, DataError
from skinbench.cli import main
from skinbench.execution.runner import run_suite
from skinbench.data.preflight import preflight

TINY = {"datasets": [{"name": "demo", "params": {"n_patients": 12, "image_size": 24}}],
        "backbones": [{"name": "handcrafted", "params": {"size": 24}}], "heads": ["logreg"],
        "protocol": {"seeds": 1, "dummy_draws": 50}}


def run_cli(tmp_path, capsys, suite: dict | str | bytes, *extra: str) -> tuple[int, str]:
    path = tmp_path / "suite.yaml"
    if isinstance(suite, bytes):
        path.write_bytes(suite)
    else:
        path.write_text(suite if isinstance(suite, str) else yaml.safe_dump(suite))
    code = main(["run", str(path), "--out", str(tmp_path / "run"), "--no-progress", "--format", "none", *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize("protocol, expected", [
    ({"seeds": "three"}, "'protocol.seeds': input should be a valid list, got 'three' (str)"),
    ({"seeds": 2.5}, "'protocol.seeds': input should be a valid list, got 2.5 (float)"),
    ({"test_fraction": "0.2"}, "'protocol.test_fraction': input should be a valid number, got '0.2' (str)"),
    ({"val_folds": "8"}, "'protocol.val_folds': input should be a valid integer, got '8' (str)"),
    ({"test_fraction": 1.5}, "'protocol.test_fraction': input should be less than 1"),
    ({"sedes": 3}, "unknown key 'protocol.sedes' (did you mean 'seeds'?)"),
])
def test_wrong_types_name_the_key_and_the_expected_type(tmp_path, capsys, protocol, expected):
    code, err = run_cli(tmp_path, capsys, {**TINY, "protocol": protocol})
    assert code == 2 and expected in err, err
    assert not (tmp_path / "run").exists()


def test_a_protocol_given_as_a_list_is_refused(tmp_path, capsys):
    code, err = run_cli(tmp_path, capsys, {**TINY, "protocol": [{"seeds": 1}]})
    assert code == 2 and "'protocol': input should be a valid dictionary" in err


def test_a_lone_name_or_value_is_a_list_of_one(tmp_path):
    suite = {**TINY, "heads": "logreg", "backbones": {"name": "handcrafted", "params": {"size": 24}}}
    checked = preflight(suite)
    assert [h.name for h in checked.plugins["heads"]] == ["logreg"]
    from skinbench.datasets.generic_csv import GenericCsv
    assert GenericCsv(csv="x.csv", label_columns="label").config["label_columns"] == ["label"]


def test_a_misspelt_plugin_gets_a_suggestion(tmp_path, capsys):
    code, err = run_cli(tmp_path, capsys, {**TINY, "heads": ["logrge"]})
    assert code == 2 and "unknown head 'logrge' (did you mean 'logreg'?)" in err


def test_a_plugin_raising_in_its_constructor_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"head 'exploding' \(heads\[0\]\) failed to start: RuntimeError: cannot start"):
        preflight({**TINY, "heads": ["exploding"]}, extra_plugins=[BadInputPlugins()])


def test_an_unimportable_entry_point_is_named_with_how_to_block_it(tmp_path):
    import subprocess
    import sys

    site = tmp_path / "site"
    (site / "sb_broken").mkdir(parents=True)
    (site / "sb_broken" / "__init__.py").write_text("import does_not_exist_anywhere\n")
    info = site / "sb_broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sb-broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[skinbench]\nbroken_plugin = sb_broken\n")
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(TINY))
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-m", "skinbench.cli", "validate", str(tmp_path / "suite.yaml")],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "plugin entry point 'broken_plugin' of package 'sb-broken' failed to import (ModuleNotFoundError" in proc.stderr
    assert "plugins: {block: [broken_plugin]}" in proc.stderr
    blocked = {**TINY, "plugins": {"block": ["broken_plugin"]}}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(blocked))
    proc = subprocess.run([sys.executable, "-m", "skinbench.cli", "validate", str(tmp_path / "suite.yaml")],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_an_out_that_is_a_file_or_below_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "run").write_text("not a folder")
    code, err = run_cli(tmp_path, capsys, TINY)
    assert code == 2 and f"--out (the run directory) {tmp_path / 'run'} is a file; give a folder" in err
    code, err = run_cli(tmp_path, capsys, TINY, "--out", str(tmp_path / "run" / "inside"))
    assert code == 2 and "cannot be created" in err and "is a file" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write read-only folders")
def test_a_read_only_out_is_refused(tmp_path, capsys):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o555)
    code, err = run_cli(tmp_path, capsys, TINY, "--out", str(tmp_path / "ro" / "run"))
    assert code == 2 and "is not writable" in err


def test_a_suite_that_is_not_utf8_is_named(tmp_path, capsys):
    code, err = run_cli(tmp_path, capsys, "name: caf\xe9\n".encode("latin-1"))
    assert code == 2 and "is not UTF-8 text" in err


@pytest.fixture
def generic(tmp_path):
    """A generic-csv dataset of 12 patients × 2 images, labels a/b, writable per test."""
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for p in range(12):
        for i in range(2):
            name = f"p{p}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / name)
            rows.append({"image": name, "patient_id": f"P{p}", "label": "ab"[(p + i) % 2]})
    pd.DataFrame(rows).to_csv(folder / "data.csv", index=False)
    return folder


def generic_suite(folder, **params):
    return {**TINY, "datasets": [{"name": "generic-csv", "params": {"csv": str(folder / "data.csv"), **params}}]}


def test_the_literal_label_nan_is_not_a_class(tmp_path, generic):
    table = pd.read_csv(generic / "data.csv")
    table.loc[3, "label"] = "NaN"
    table.to_csv(generic / "data.csv", index=False)
    with pytest.raises(DataError, match="label 'NaN' looks like a missing value"):
        preflight(generic_suite(generic))


def test_empty_patient_ids_are_not_pooled(tmp_path):
    from skinbench.datasets.demo import DemoDataset

    folder = tmp_path / "cosmetic"
    shutil.copytree(DemoDataset(n_patients=12, image_size=24).generate().parent, folder)
    table = pd.read_csv(folder / "cosmetic.csv", dtype=str, keep_default_na=False)
    table.loc[[0, 5], "patient_id"] = ["", "nan"]
    table.to_csv(folder / "cosmetic.csv", index=False)
    suite = {**TINY, "datasets": [{"name": "cosmetic-csv", "params": {"csv": str(folder / "cosmetic.csv")}}]}
    with pytest.raises(DataError, match="the patient id is empty or NaN") as info:
        preflight(suite)
    assert "cosmetic.csv line 2, " in str(info.value) and "cosmetic.csv line 7;" in str(info.value)  # both rows


def test_too_few_patients_is_an_error_not_a_nan_crash(tmp_path, generic):
    table = pd.read_csv(generic / "data.csv")
    table = table[table["patient_id"].isin(["P0", "P1"])]
    table.to_csv(generic / "data.csv", index=False)
    with pytest.raises(DataError, match="only 2 patient"):
        preflight(generic_suite(generic))


def test_a_decompression_bomb_is_named_not_a_traceback(tmp_path, generic):
    Image.new("1", (20000, 20000)).save(generic / "p0_0.png")
    with pytest.raises(DataError) as info:
        preflight(generic_suite(generic))
    assert str(generic / "p0_0.png") in str(info.value) and "too large" in str(info.value)


def test_when_every_model_cell_fails_the_terminal_shows_the_cause_and_the_dummies(tmp_path, capsys, monkeypatch):
    import skinbench.configuration.registry as registry

    original = registry.load_catalogue
    monkeypatch.setattr(registry, "load_catalogue",
                        lambda blocked=(), autoload=None, extra=(): original(blocked, autoload, [BadInputPlugins()]))
    import skinbench.data.preflight as validate
    monkeypatch.setattr(validate, "load_catalogue", registry.load_catalogue)
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({**TINY, "heads": ["always-failing"]}))
    code = main(["run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "run"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert "head 'always-failing' failed: ValueError: no signal here" in captured.err
    assert "runs failed" in captured.err or "run(s) failed" in captured.err
    assert "stratified" in captured.out  # the leaderboard still shows the chance baselines


def test_a_full_cache_disk_warns_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    from skinbench.execution.cache import EmbeddingCache

    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(EmbeddingCache, "put", full)
    results = run_suite(TINY, tmp_path / "run", cache_dir=tmp_path / "cache")
    assert (results["status"] == "ok").all()
    assert "cannot be written (No space left on device)" in caplog.text


def test_validate_refuses_missing_weights_without_a_network_call(tmp_path, capsys, connections):
    suite = {**TINY, "backbones": [{"name": "panderm", "params": {"weights": str(tmp_path / "missing.pth")}}],
             "augmenters": [{"name": "sd-img2img", "params": {"model": str(tmp_path / "no_sd_folder")}}]}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    code = main(["validate", str(tmp_path / "suite.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "backbone 'panderm'" in err and "does not exist" in err
    assert f"augmenter 'sd-img2img': model folder {tmp_path / 'no_sd_folder'} does not exist" in err  # not a hub id
    assert connections == []
