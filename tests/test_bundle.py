"""Submission bundles: what `skinbench bundle` packs verifies; a corrupted or edited bundle is refused, naming the
file and the record that fails; `skinbench publish` takes bundles like run directories."""
from __future__ import annotations

import json
import tarfile

import pandas as pd
import pytest
from skinbench.api import DataError
from skinbench.cli import main
from skinbench.execution.runner import run_suite
from skinbench.leaderboard.bundle import Manifest, sha256
from skinbench.leaderboard.site import publish
from skinbench.leaderboard.verify import verify_bundle
from skinbench.record.store import ResultsStore

BOOT = 100


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from conftest import tiny_suite

    root = tmp_path_factory.mktemp("bundle")
    suite = tiny_suite(protocol={"seeds": [0, 1], "dummy_draws": 100})
    suite["datasets"][0]["tasks"] = ["moisture", "texture"]
    run_suite(suite, root / "demo-run")
    assert main(["bundle", str(root / "demo-run"), "--out", str(root / "demo.tar.gz"), "--n-boot", str(BOOT)]) == 0
    return root / "demo.tar.gz"


def _edited(bundle, tmp_path, edit, redigest: bool = True):
    """A copy of ``bundle`` after ``edit(run folder)``; with ``redigest`` its manifest is made to match again."""
    folder = tmp_path / "unpacked"
    with tarfile.open(bundle, "r:gz") as tar:
        tar.extractall(folder, filter="data")
    run = next(folder.iterdir())
    edit(run)
    if redigest:
        manifest = json.loads((run / "manifest.json").read_text())
        for entry in manifest["files"]:
            data = (run / entry["path"]).read_bytes()
            entry.update(sha256=sha256(data), bytes=len(data))
        (run / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "edited.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(run, arcname=run.name)
    return out


def _refused(capsys, path) -> str:
    code = main(["verify", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    return err


def test_a_bundle_verifies_every_digest_number_and_its_split(bundle, capsys):
    assert main(["verify", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "files match their sha256 digests" in out
    assert "the metrics of 4 model rows match their predictions" in out  # 2 tasks × 2 seeds
    assert f"leaderboard rows and 0 augmentation effects recomputed from the predictions ({BOOT} resamples" in out
    assert "the split of 'demo(image_size=32, n_patients=16)' is the one its data" in out
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        manifest = Manifest.model_validate_json(tar.extractfile("demo-run/manifest.json").read())
    assert {"demo-run/results.jsonl", "demo-run/suite.yaml", "demo-run/receipt.json", "demo-run/leaderboard.json"} \
        <= set(names)
    assert sum(n.startswith("demo-run/predictions/") for n in names) == 2 * 4 * 2  # (3 dummies + 1 model) × 2 seeds × 2 tasks
    assert any(n.startswith("demo-run/split/") for n in names)
    assert {f.path for f in manifest.files} == {n[len("demo-run/"):] for n in names} - {"manifest.json"}


def test_a_corrupted_file_is_refused_by_its_digest(bundle, tmp_path, capsys):
    def damage(run):
        path = next((run / "predictions").iterdir())
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    err = _refused(capsys, _edited(bundle, tmp_path, damage, redigest=False))
    assert "predictions/" in err and "(the file was altered after bundling)" in err


def test_an_edited_result_with_matching_digests_is_refused_by_its_predictions(bundle, tmp_path, capsys):
    def edit(run):
        store = ResultsStore(run)
        records = store.records()
        store.log.unlink()
        for record in records:
            if record["head"] == "logreg" and record["seed"] == 1 and record["task"] == "moisture":
                record["macro_f1"], cell = 0.99, record["cell_id"]
            store.append(record)

    err = _refused(capsys, _edited(bundle, tmp_path, edit))
    assert "results.jsonl: cell " in err and " seed 1 split 0 fold 0: macro_f1 is 0.99, its predictions" in err


def test_an_edited_leaderboard_number_is_refused_by_recomputing_it(bundle, tmp_path, capsys):
    def edit(run):
        board = json.loads((run / "leaderboard.json").read_text())
        row = next(r for r in board["configurations"] if r["verdict"] is not None)
        row["macro_f1_ci_low"] = 0.9
        (run / "leaderboard.json").write_text(json.dumps(board))

    err = _refused(capsys, _edited(bundle, tmp_path, edit))
    assert "leaderboard.json: configurations " in err and ": macro_f1_ci_low is 0.9, recomputed " in err


def test_an_edited_split_is_refused_when_the_data_is_here(bundle, tmp_path, capsys):
    def edit(run):
        path = next((run / "split").iterdir())
        record = json.loads(path.read_text())
        record["test_groups_per_split"]["0"][0] = "P999"
        path.write_text(json.dumps(record))

    err = _refused(capsys, _edited(bundle, tmp_path, edit))
    assert "its test patients are not those the dataset and the bundle's protocol give here" in err


def test_an_unlisted_file_or_a_broken_manifest_is_refused(bundle, tmp_path, capsys):
    err = _refused(capsys, _edited(bundle, tmp_path, lambda run: (run / "extra.txt").write_text("x"), redigest=False))
    assert "extra.txt: in the bundle but not in manifest.json" in err

    def break_manifest(run):
        manifest = json.loads((run / "manifest.json").read_text())
        manifest["files"][0]["sha256"] = "not a digest"
        (run / "manifest.json").write_text(json.dumps(manifest))

    err = _refused(capsys, _edited(bundle, tmp_path / "2", break_manifest, redigest=False))
    assert "manifest.json: files.0.sha256: String should match pattern" in err
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    assert "not a readable bundle" in _refused(capsys, tmp_path / "junk.tar.gz")


def test_publish_takes_a_verified_bundle_and_refuses_a_tampered_one(bundle, tmp_path):
    site = publish([bundle], tmp_path / "site", n_boot=BOOT)
    index = (tmp_path / "site" / "index.html").read_text()
    assert site.pages == 3 and "demo-run" in index
    blobs = sorted((tmp_path / "site").glob("figures/*/ranks.svg"))  # the rank-stability blob plot, per task
    assert len(blobs) == 2 and all("Rank stability" in b.read_text() for b in blobs)
    assert all("rank [95%]" in page.read_text() for page in (tmp_path / "site" / "tasks").glob("*.html"))
    rows = pd.read_csv(tmp_path / "site" / "data" / next((tmp_path / "site" / "data").iterdir()).name / "results.csv")
    assert len(rows) == 16
    edited = _edited(bundle, tmp_path / "t", lambda run: (run / "receipt.json").write_text("{}"), redigest=False)
    with pytest.raises(DataError, match="receipt.json: its sha256"):
        publish([edited], tmp_path / "site2", n_boot=BOOT)
    assert verify_bundle(bundle).manifest.n_boot == BOOT
