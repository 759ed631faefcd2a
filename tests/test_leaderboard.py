"""The leaderboard's layout: every table from a run directory of constructed predictions."""
from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
from leaderboard_fixtures import patients, write_task
from PIL import Image
from skinbench.api import SkinbenchError
from skinbench.leaderboard import (
    build_report,
    configuration_stats,
    read_results,
    render,
    write_plot,
)

TIMM = "timm(model=resnet18)"
OOM = "RuntimeError: deliberate failure"


def write_run(run_dir, timm_label=TIMM):
    """Two tasks (binary nominal, three-class ordinal), two backbones × two augmenters, three seeds."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 48)
    noisy = lambda accuracy: np.where(rng.random(48) < accuracy, y, 1 - y)
    write_task(run_dir, patients(24), y, {
        ("handcrafted", "none", "logreg"): [noisy(0.75) for _ in range(3)],
        ("handcrafted", "classical", "logreg"): [noisy(0.75) for _ in range(3)],
        (timm_label, "none", "logreg"): [y, y, noisy(0.95)],
        (timm_label, "classical", "logreg"): [y, y, y],
    }, task="moisture", failed=(("handcrafted", "classical", "logreg", 2),))
    y3 = np.tile([0, 1, 2, 1], 12)
    shifted = np.minimum(y3 + 1, 2)
    write_task(run_dir, patients(24), y3, {
        ("handcrafted", "none", "logreg"): [shifted] * 3,
        ("handcrafted", "classical", "logreg"): [shifted] * 3,
        (timm_label, "none", "logreg"): [y3] * 3,
        (timm_label, "classical", "logreg"): [rng.integers(0, 3, 48) for _ in range(3)],
    }, task="skin_texture", classes=("low", "mid", "high"), train_counts=(10, 20, 0), ordinal=True)
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("board") / "run")


@pytest.fixture(scope="module")
def markdown(run_dir):
    return render(run_dir, "markdown", n_boot=400)


def _markdown_table(page: str, heading: str) -> pd.DataFrame:
    lines = page.split(f"### {heading}\n\n", 1)[1].split("\n\n")[1].splitlines()
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines if not line.startswith("|--")]
    return pd.DataFrame(rows[1:], columns=rows[0])


def test_verdict_table_shows_intervals_verdicts_and_ties(markdown, run_dir):
    table = _markdown_table(markdown, "Macro-F1 against chance")
    assert len(table) == 8 and list(table["task"].unique()) == ["moisture", "skin_texture"]
    moisture = table[table["task"] == "moisture"]
    assert moisture["macro-F1"].is_monotonic_decreasing  # best first
    best = moisture.iloc[0]
    assert (best["backbone"], best["augmenter"], best["verdict"], best["vs best"]) == (TIMM, "classical",
                                                                                      "above chance", "best")
    assert best["macro-F1"].startswith("1.00 [")
    assert best["Δ vs stratified"].startswith("+") and " [+" in best["Δ vs stratified"]
    assert set(moisture["vs best"]) <= {"best", "tied", "worse"} and "worse" in set(moisture["vs best"])
    assert not table.map(lambda cell: cell.endswith("*")).any().any()  # the seed-only star rule is gone
    texture = table[table["task"] == "skin_texture"].set_index(["backbone", "augmenter"])
    assert texture.loc[(TIMM, "none"), "QWK"].startswith("1.00")
    assert set(moisture["QWK"]) == {"–"}  # QWK only for the ordinal task
    caption = markdown.split("### Macro-F1 against chance\n\n", 1)[1].split("\n", 1)[0]
    assert "95%" in caption and "test patients" in caption and "Holm" in caption and "8 model configurations" in caption


def test_numbers_in_the_page_are_those_of_the_statistics(run_dir, markdown):
    stats = configuration_stats(read_results(run_dir), n_boot=400)
    row = stats[(stats["task"] == "moisture") & (stats["backbone_label"] == "handcrafted")
                & (stats["augmenter_label"] == "none")].iloc[0]
    text = f"{row['macro_f1_mean']:.2f} [{row['macro_f1_ci_low']:.2f}, {row['macro_f1_ci_high']:.2f}]"
    assert text in markdown


def test_failed_rows_are_excluded_counted_and_listed(run_dir, markdown):
    stats = configuration_stats(read_results(run_dir), n_boot=100)
    partial = stats[(stats["task"] == "moisture") & (stats["augmenter_label"] == "classical")
                    & (stats["backbone_label"] == "handcrafted")].iloc[0]
    assert (partial["n_ok"], partial["n_failed"], partial["macro_f1_n"]) == (2, 1, 2)
    assert "### Failures (1)" in markdown and OOM in markdown
    performance = _markdown_table(markdown, "handcrafted + logreg").set_index("task")
    assert performance.loc["moisture", "classical macro-F1"].endswith("(n=2)")


def test_dummy_augmentation_sizes_and_variance_tables(markdown):
    dummies = _markdown_table(markdown, "Dummy baselines").set_index("task")
    assert dummies.loc["moisture", "most-frequent macro-F1"].count("[") == 1
    effect = _markdown_table(markdown, "Augmentation effect").set_index(["backbone + head", "augmenter"])
    assert effect.loc[(f"{TIMM} + logreg", "classical"), "skin_texture"].endswith("hurts")
    sizes = _markdown_table(markdown, "What the data can show").set_index("task")
    assert sizes.loc["skin_texture", "train images per class"] == "low: 10, mid: 20, high: 0"
    assert sizes.loc["skin_texture", "test images per class"] == "low: 12, mid: 24, high: 12"
    assert (sizes.loc["moisture", "test patients"], sizes.loc["moisture", "test images"]) == ("24", "48")
    assert float(sizes.loc["moisture", "detectable Δ (Holm)"]) > float(sizes.loc["moisture", "detectable Δ"]) > 0
    variance = _markdown_table(markdown, "Sources of variance").set_index("task")
    assert variance.loc["moisture", "SD split"] == "–" and variance.loc["moisture", "SD seed"].endswith("%)")
    assert "skin_texture: class 'high' has no training image" in markdown.split("## Warnings", 1)[1]


def test_latex_escapes_and_shows_the_intervals(run_dir):
    latex = render(run_dir, "latex", n_boot=100)
    assert r"skin\_texture" in latex and "skin_texture" not in latex
    assert r"\toprule" in latex and r"$\Delta$ vs stratified" in latex and "[" in latex
    assert "Holm" in latex


def test_html_escapes_every_name_and_embeds_images(tmp_path):
    run_dir = write_run(tmp_path / "run", timm_label="timm(model=<script>alert(1)</script>)")
    strip = io.BytesIO()
    Image.new("RGB", (4, 2), "red").save(strip, format="PNG")
    (run_dir / "synthetic_strip.png").write_bytes(strip.getvalue())
    page = render(run_dir, "html", n_boot=100)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page
    assert "timm(model=&lt;script&gt;alert(1)&lt;/script&gt;)" in page
    assert base64.b64encode(strip.getvalue()).decode() in page
    assert page.count("data:image/png;base64,") == 2  # macro-F1 chart and the strip


def test_csv_has_one_row_per_configuration_with_the_interface_columns(run_dir):
    table = pd.read_csv(io.StringIO(render(run_dir, "csv", n_boot=100)))
    assert len(table) == 2 * (4 + 3)
    assert {"macro_f1_mean", "macro_f1_ci_low", "macro_f1_ci_high", "delta_vs_stratified",
            "delta_vs_stratified_ci_low", "delta_vs_stratified_ci_high", "p_vs_stratified", "p_vs_stratified_holm",
            "verdict", "tied_with_best", "qwk_ci_low"} <= set(table.columns)
    models = table[~table["head"].str.startswith("dummy:")]
    assert set(models["verdict"]) <= {"above_chance", "chance", "below_chance"}
    assert table.loc[table["head"].str.startswith("dummy:"), "verdict"].isna().all()
    assert models["tied_with_best"].isin([True, False]).all()


def test_plot_is_a_png(run_dir, tmp_path):
    out = write_plot(run_dir, tmp_path / "plots" / "macro_f1.png")
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5_000
    assert Image.open(out).size[0] > 400


def test_missing_results_and_unknown_format_are_explained(run_dir, tmp_path):
    with pytest.raises(SkinbenchError, match="holds no results"):
        render(tmp_path / "empty")
    with pytest.raises(SkinbenchError, match="markdown, latex, html, csv"):
        render(run_dir, "docx")


def test_markdown_keeps_table_shape_when_a_label_contains_a_pipe(tmp_path):
    run_dir = write_run(tmp_path / "run", timm_label="timm(model=a|b)")
    table = _markdown_table(render(run_dir, "markdown", n_boot=100), "Macro-F1 against chance")
    assert r"timm(model=a\|b)" in set(table["backbone"]) and len(table.columns) == 13  # with rank and contamination


def test_report_returns_its_warnings(run_dir):
    report = build_report(read_results(run_dir), n_boot=100)
    assert any("class 'high' has no training image" in w for w in report.warnings)
    assert [s.title for s in report.sections] == ["Dataset demo", "Warnings", "Failures"]
