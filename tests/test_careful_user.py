"""What a careful user trips on: Ctrl-C must not report success, odd folder names must not crash, rows left
out must be counted, a constant predictor must never beat chance, and progress must name each stage."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from skinbench.cli import main
from skinbench.leaderboard import build_report, read_results
from skinbench.execution.runner import run_suite
from skinbench.record.store import ResultsStore

SKINBENCH = [sys.executable, "-m", "skinbench.cli"]


def _suite_file(tmp_path: Path, suite: dict) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.mark.slow
def test_ctrl_c_exits_130_keeps_finished_cells_and_a_rerun_resumes(tmp_path, suite_factory):
    suite = _suite_file(tmp_path, suite_factory(protocol={"seeds": list(range(12)), "dummy_draws": 100}))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([*SKINBENCH, "run", str(suite), "--out", str(out), "--format", "none"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    log = out / "results.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (log.exists() and len(log.read_bytes().splitlines()) >= 20):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    kept = len(ResultsStore(out).read())
    assert f"{kept} finished cell" in err and "resume" in err
    assert 20 <= kept < 5 * 12 * 4
    rerun = subprocess.run([*SKINBENCH, "run", str(suite), "--out", str(out), "--format", "none"],
                           capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    results = ResultsStore(out).read()
    assert len(results) == 5 * 12 * 4 and (results["status"] == "ok").all()


def test_a_non_utf8_output_folder_is_named_not_a_traceback(tmp_path, capsys, suite_factory):
    suite = _suite_file(tmp_path, suite_factory(protocol={"seeds": [0], "dummy_draws": 50}))
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/run\xff")
    code = main(["run", str(suite), "--out", odd, "--format", "none", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "run\\xff has a name that is not valid UTF-8" in err
    assert not os.path.exists(os.fsencode(odd)), "nothing is written before the preflight passes"
    from skinbench.leaderboard.site import publish
    from skinbench.api import SkinbenchError

    with pytest.raises(SkinbenchError, match="site folder .*site\\\\xff has a name that is not valid UTF-8"):
        publish([tmp_path], os.fsdecode(os.fsencode(str(tmp_path)) + b"/site\xff"))


def _csv_with_unlabelled_rows(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for p in range(12):
        for i in range(2):
            path = tmp_path / f"p{p}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(path)
            grade = "" if (p, i) in {(1, 0), (4, 1), (7, 0)} else str(int(rng.integers(0, 2)))
            rows.append({"image": path.name, "patient_id": f"P{p}", "grade": grade})
    pd.DataFrame(rows).to_csv(tmp_path / "data.csv", index=False)
    return tmp_path / "data.csv"


def test_rows_left_out_are_counted_in_validate_run_and_the_leaderboard(tmp_path, capsys):
    csv = _csv_with_unlabelled_rows(tmp_path)
    suite = {"datasets": [{"name": "generic-csv", "params": {"csv": str(csv), "label_columns": ["grade"]}}],
             "backbones": [{"name": "handcrafted", "params": {"size": 16}}], "heads": ["logreg"],
             "protocol": {"seeds": [0], "dummy_draws": 50}}
    path = _suite_file(tmp_path, suite)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "left out" in line)
    assert "3 row(s) left out (rows with no grade)" in line
    assert f"{csv} line 4" in line and f"{csv} line 11" in line and f"{csv} line 16" in line
    run_suite(suite, tmp_path / "run")
    warnings = build_report(read_results(tmp_path / "run"), n_boot=50).warnings
    assert any("3 row(s) left out (rows with no grade)" in w for w in warnings)


def test_progress_names_each_stage(tmp_path, suite_factory, capsys):
    run_suite(suite_factory(augmenters=["none", "classical"], protocol={"seeds": [0], "dummy_draws": 50}),
              tmp_path / "run", progress=True)
    err = capsys.readouterr().err
    for stage in ("embed images", "augment parts", "fit+score cells"):
        assert stage in err
    assert "img/s" in err or "s/img" in err
    assert "synthetic images" in err
