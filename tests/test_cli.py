"""The command line: run, leaderboard formats, validate, cache."""
from __future__ import annotations

import pandas as pd
import yaml

from skinbench.cli import main


def test_run_then_leaderboard_in_every_format(tmp_path, capsys, suite_factory):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump(suite_factory()))
    out = tmp_path / "run"
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "40 result rows" in printed and "| hyperpigmentation" in printed
    assert "<table" in (out / "leaderboard.html").read_text()
    assert (out / "macro_f1.png").read_bytes()[:4] == b"\x89PNG"
    for fmt in ("markdown", "latex", "html", "csv"):
        target = tmp_path / f"board.{fmt}"
        assert main(["leaderboard", str(out), "--format", fmt, "-o", str(target)]) == 0
        assert "hyperpigmentation" in target.read_text()
    tidy = pd.read_csv(tmp_path / "board.csv")
    assert {"task", "backbone", "augmenter", "head"} <= set(tidy.columns)
    assert main(["leaderboard", str(out), "--plot", str(tmp_path / "f1.png")]) == 0
    assert (tmp_path / "f1.png").read_bytes()[:4] == b"\x89PNG"


def test_subgroup_scores_partition_the_test_set(tmp_path, capsys, suite_factory):
    from skinbench.leaderboard import read_results, subgroup_stats
    from skinbench.execution.runner import run_suite

    out = tmp_path / "run"
    results = run_suite(suite_factory(), out)
    scores = subgroup_stats(read_results(out), "region", n_boot=50)
    assert set(scores["region"]) == {"cheek", "forehead"}
    sizes = scores.groupby("task")["n_images"].sum()
    n_test = results[(results["head"] == "logreg") & (results["seed"] == 0)].set_index("task")["n_test"]
    assert (sizes.sort_index() == n_test.sort_index()).all()
    assert main(["leaderboard", str(out), "--by", "region"]) == 0
    printed = capsys.readouterr().out
    assert "cheek" in printed and "forehead" in printed


def test_validate_and_cache_commands(tmp_path, capsys, suite_factory):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump(suite_factory()))
    assert main(["validate", str(suite)]) == 0
    assert "suite is valid" in capsys.readouterr().out
    cache = ["--cache-dir", str(tmp_path / "cache")]
    main(["run", str(suite), "--out", str(tmp_path / "run"), "--no-progress", "--format", "none", *cache])
    capsys.readouterr()
    assert main(["cache", "info", *cache]) == 0
    assert "handcrafted" in capsys.readouterr().out
    assert main(["cache", "clear", "--backbone", "handcrafted", *cache]) == 0
    assert "removed 1" in capsys.readouterr().out
    main(["cache", "info", *cache])
    assert "handcrafted" not in capsys.readouterr().out
