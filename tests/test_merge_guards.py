"""Leaderboards over several run directories: one dataset, one data version, one set of test patients."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
from skinbench.api import DataError
from skinbench.cli import main
from skinbench.execution.runner import run_suite
from skinbench.leaderboard import build_report, merge_results, read_results
from skinbench.record.store import ResultsStore


def _suite(root, **protocol):
    from conftest import tiny_suite

    suite = tiny_suite(protocol={"seeds": [0], "dummy_draws": 100, **protocol})
    suite["datasets"][0]["params"]["root"] = str(root)
    suite["datasets"][0]["tasks"] = ["moisture"]
    return suite


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """The same dataset label run three times: as generated, after one label was corrected, and split otherwise."""
    base = tmp_path_factory.mktemp("guards")
    data = base / "data"
    first = run_suite(_suite(data), base / "first")
    csv = next(data.glob("*/cosmetic.csv"))
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    table.loc[0, "moisture"] = "1" if table.loc[0, "moisture"] != "1" else "0"  # a corrected label
    table.to_csv(csv, index=False)
    corrected = run_suite(_suite(data), base / "corrected")
    assert set(first["dataset"]) == set(corrected["dataset"])  # one label, two versions of the data
    assert set(first["data_fingerprint"]) != set(corrected["data_fingerprint"])
    resplit = run_suite(_suite(data, split_seed=1), base / "resplit")
    return base


def test_runs_on_different_data_are_refused_naming_both(versions, capsys):
    first, corrected = versions / "first", versions / "corrected"
    with pytest.raises(DataError, match=f"run directories {first} and {corrected} were computed on different data "
                                        r"\(data fingerprint "):
        merge_results([read_results(first), read_results(corrected)])
    code = main(["leaderboard", str(first), str(corrected), "--n-boot", "50"])
    err = capsys.readouterr().err
    assert code == 2 and "--allow-different-data" in err and "Traceback" not in err


def test_runs_on_other_test_patients_are_refused(versions):
    with pytest.raises(DataError, match="the same data but different test patients"):
        merge_results([read_results(versions / "corrected"), read_results(versions / "resplit")])


def test_allow_different_data_shows_each_version_as_its_own_dataset(versions, capsys):
    first, corrected = versions / "first", versions / "corrected"
    merged = merge_results([read_results(first), read_results(corrected)], allow_different_data=True)
    label = read_results(first)["dataset"].iloc[0]
    assert list(pd.unique(merged["dataset"])) == [label, f"{label} @ {corrected}"]
    report = build_report(merged, n_boot=50)
    assert [s.title for s in report.sections if s.title.startswith("Dataset")] == [
        f"Dataset {label}", f"Dataset {label} @ {corrected}"]
    assert main(["leaderboard", str(first), str(corrected), "--n-boot", "50", "--allow-different-data"]) == 0
    capsys.readouterr()


def test_identical_cells_count_once_only_when_their_identities_are_equal(versions, tmp_path):
    copy = shutil.copytree(versions / "first", tmp_path / "copy")
    merged = merge_results([read_results(versions / "first"), read_results(copy)])
    assert len(merged) == len(read_results(copy)) and not merged.duplicated(["cell_id", "seed", "split"]).any()
    store = ResultsStore(copy)
    records = store.records()
    store.log.unlink()
    for record in records:  # same cell id, another backbone identity: only an edit can do that
        if record["head"] == "logreg":
            record["config"] = {**record["config"], "backbone": "0" * 32}
        store.append(record)
    with pytest.raises(DataError, match=r"is in .* with different identities \(config differ\)"):
        merge_results([read_results(versions / "first"), read_results(copy)])
