"""Subgroup leaderboards: macro-F1 over all the task's classes, per-subgroup chance, small groups, the gap."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from leaderboard_fixtures import patients, write_task
from PIL import Image
from skinbench.api import SkinbenchError
from skinbench.cli import main
from skinbench.leaderboard import read_results, render_report, subgroup_stats
from skinbench.leaderboard.subgroups import plot_subgroups, subgroup_report


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Light skin: both classes, a perfect head. Dark skin: class 'a' only, a head that always says 'a'.
    Medium: three patients only."""
    light, dark, medium = 20, 12, 3
    groups = patients(light + dark + medium)
    y = np.concatenate([np.tile([0, 1], light), np.zeros(2 * dark, int), np.tile([0, 1], medium)])
    tone = ["light"] * 2 * light + ["dark"] * 2 * dark + ["medium"] * 2 * medium
    majority = np.zeros_like(y)
    perfect_then_majority = np.where(np.array(tone) == "light", y, 0)
    return write_task(tmp_path_factory.mktemp("subgroups") / "run", groups, y, {
        ("always-a", "none", "logreg"): [majority, majority],
        ("mixed", "none", "logreg"): [perfect_then_majority, perfect_then_majority],
    }, columns={"skin_tone": tone}, train_counts=(20, 20))


@pytest.fixture(scope="module")
def scores(run_dir):
    return subgroup_stats(read_results(run_dir), "skin_tone", n_boot=400)


def _row(scores, backbone, tone):
    match = scores[(scores["backbone_label"] == backbone) & (scores["skin_tone"] == tone)]
    assert len(match) == 1
    return match.iloc[0]


def test_macro_f1_is_averaged_over_all_the_tasks_classes(scores):
    # dark skin holds class 'a' only: always saying 'a' is perfect on it, but 'b' (absent, never predicted) counts 0
    assert _row(scores, "always-a", "dark")["macro_f1_mean"] == pytest.approx(0.5)
    assert _row(scores, "mixed", "light")["macro_f1_mean"] == pytest.approx(1.0)
    always_light = _row(scores, "always-a", "light")  # half the images right, class 'b' never predicted
    assert always_light["macro_f1_mean"] == pytest.approx((2 / 3 + 0) / 2)


def test_each_subgroup_has_its_own_chance_level_and_interval(scores):
    dark, light = _row(scores, "mixed", "dark"), _row(scores, "mixed", "light")
    # a prior of (0.5, 0.5): on 'a'-only images F1(a) = 2·0.5/(1 + 0.5) in expectation, F1(b) = 0; the most-frequent
    # dummy says 'a' and is perfect there (0.5 over both classes): the subgroup's chance is that best dummy
    assert dark["stratified_macro_f1"] == pytest.approx((2 / 3) / 2, abs=0.03)
    assert (dark["chance_dummy"], dark["chance_macro_f1"]) == ("dummy:most_frequent", pytest.approx(0.5))
    assert light["chance_macro_f1"] == pytest.approx(0.5, abs=0.03)
    assert light["delta_vs_stratified"] == pytest.approx(1 - light["stratified_macro_f1"])
    assert light["delta_vs_best_dummy"] == pytest.approx(1 - light["chance_macro_f1"])
    assert light["delta_vs_stratified_ci_low"] > 0
    assert light["macro_f1_ci_low"] <= light["macro_f1_mean"] <= light["macro_f1_ci_high"]
    assert (light["n_images"], light["n_patients"]) == (40, 20)


def test_small_subgroups_are_flagged_and_left_out_of_the_gap(scores):
    medium = _row(scores, "mixed", "medium")
    assert (medium["n_images"], bool(medium["enough"])) == (6, False)
    mixed = _row(scores, "mixed", "light")
    assert (mixed["best_group"], mixed["worst_group"]) == ("light", "dark")
    assert mixed["worst_group_gap"] == pytest.approx(0.5)
    assert mixed["worst_group_gap_ci_low"] > 0


def test_subgroup_report_formats_and_greys_out_small_groups(scores, run_dir, tmp_path):
    report = subgroup_report(scores, "skin_tone", n_boot=400)
    markdown = render_report(report, "markdown")
    assert "### macro-F1 by skin_tone" in markdown and "n=6, too few" in markdown
    assert "1.00 [" in markdown and "(light − dark)" in markdown
    assert "all the task's classes" in markdown and "95%" in markdown
    assert any("'medium' has 6 test image(s)" in w for w in report.warnings)
    assert r"\toprule" in render_report(report, "latex") and "<table>" in render_report(report, "html")
    tidy = pd.read_csv(io.StringIO(render_report(report, "csv")))
    assert {"skin_tone", "macro_f1_mean", "chance_macro_f1", "worst_group_gap", "enough"} <= set(tidy.columns)
    plot_subgroups(scores, "skin_tone", tmp_path / "tones.png")
    assert Image.open(tmp_path / "tones.png").size[0] > 300


def test_cli_by_honours_format_output_and_plot(run_dir, tmp_path, capsys):
    out, png = tmp_path / "tones.csv", tmp_path / "tones.png"
    assert main(["leaderboard", str(run_dir), "--by", "skin_tone", "--format", "csv", "-o", str(out),
                 "--plot", str(png), "--n-boot", "200", "--min-n", "4"]) == 0
    tidy = pd.read_csv(out)
    assert tidy["enough"].all()  # --min-n 4 admits the 6 medium images
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "skinbench: warning" not in capsys.readouterr().err


def test_unknown_subgroup_column_is_explained(run_dir):
    with pytest.raises(SkinbenchError, match="no stored prediction has a 'age' column"):
        subgroup_stats(read_results(run_dir), "age", n_boot=10)


def test_a_constant_majority_predictor_is_never_above_chance_in_any_subgroup(scores, run_dir):
    """On dark skin (class 'a' only) always saying 'a' beats the stratified dummy, yet has no skill."""
    always = scores[scores["backbone_label"] == "always-a"]
    assert (always.loc[always["skin_tone"] == "dark", "delta_vs_stratified_ci_low"] > 0).all()
    assert (always["delta_vs_best_dummy"] <= 0).all() and not (always["delta_vs_best_dummy_ci_low"] > 0).any()
