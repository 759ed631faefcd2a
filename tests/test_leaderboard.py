"""The leaderboard, from hand-written results.csv files with hand-computed expectations."""
from __future__ import annotations

import base64
import io
import math

import pandas as pd
import pytest
from PIL import Image

from skinbench.api import SkinbenchError
from skinbench.leaderboard import aggregate, read_results, render, write_plot
from skinbench.store import ResultsStore

SEEDS = (0, 1, 2)
TIMM = "timm(model=resnet18)"
# macro-F1 per seed of the model cells: (task, backbone label, augmenter) -> values
MODEL_F1 = {
    ("moisture", "handcrafted", "none"): [0.55, 0.65, 0.75],
    ("moisture", "handcrafted", "classical"): [0.75, 0.65, 0.55],  # ties with none: mean 0.65
    ("moisture", TIMM, "none"): [0.70, 0.80, 0.90],
    ("moisture", TIMM, "classical"): [0.40, 0.50, 0.60],
    ("skin_texture", "handcrafted", "none"): [0.30, 0.30, 0.30],
    ("skin_texture", "handcrafted", "classical"): [0.20, 0.40, 0.60],
    ("skin_texture", TIMM, "none"): [0.35, 0.45, 0.43],
    ("skin_texture", TIMM, "classical"): [0.10, 0.20, None],  # seed 2 failed
}
DUMMY_F1 = {
    ("moisture", "dummy:most_frequent"): [0.40, 0.40, 0.40],
    ("moisture", "dummy:uniform"): [0.45, 0.50, 0.55],
    ("moisture", "dummy:stratified"): [0.50, 0.55, 0.60],
    ("skin_texture", "dummy:most_frequent"): [0.25, 0.25, 0.25],
    ("skin_texture", "dummy:uniform"): [0.30, 0.35, 0.40],
    ("skin_texture", "dummy:stratified"): [0.30, 0.30, 0.36],
}
OOM = "RuntimeError: CUDA out of memory while embedding"


def _row(task, backbone, backbone_label, augmenter, head, seed, macro_f1):
    failed = macro_f1 is None
    return {
        "cell_id": f"{task}.{backbone_label}.{augmenter}.{head}", "dataset": "demo", "task": task,
        "backbone": backbone, "augmenter": augmenter, "head": head, "seed": seed,
        "backbone_label": backbone_label, "augmenter_label": augmenter, "head_label": head,
        "status": "failed" if failed else "ok", "error": OOM if failed else None,
        "n_train": 30 + seed, "n_synthetic": 0 if augmenter in ("none", "-") else 12, "n_val": 5, "n_test": 10,
        "n_classes": 2 if task == "moisture" else 3, "ordinal": True,
        "macro_f1": macro_f1, "weighted_f1": None if failed else macro_f1 + 0.1,
        "balanced_accuracy": None if failed else macro_f1 - 0.05, "accuracy": None if failed else 0.7,
        "seconds": 1.5, "config": {"seed": seed},
    }


def write_results(run_dir, timm_label=TIMM):
    store = ResultsStore(run_dir)
    for (task, label, augmenter), values in MODEL_F1.items():
        backbone, label = ("timm", timm_label) if label == TIMM else (label, label)
        for seed, value in zip(SEEDS, values):
            store.append(_row(task, backbone, label, augmenter, "logreg", seed, value))
    for (task, head), values in DUMMY_F1.items():
        for seed, value in zip(SEEDS, values):
            store.append(_row(task, "-", "-", "-", head, seed, value))
    return run_dir


@pytest.fixture
def run_dir(tmp_path):
    """A run directory holding nothing but results.csv."""
    return write_results(tmp_path / "run")


def _cell(cells, task, backbone_label, augmenter, head="logreg"):
    match = cells[(cells["task"] == task) & (cells["backbone_label"] == backbone_label)
                  & (cells["augmenter_label"] == augmenter) & (cells["head"] == head)]
    assert len(match) == 1
    return match.iloc[0]


def test_aggregate_means_and_sample_std_per_cell(run_dir):
    cells = aggregate(read_results(run_dir))
    assert len(cells) == len(MODEL_F1) + len(DUMMY_F1)
    timm_none = _cell(cells, "moisture", TIMM, "none")
    assert timm_none["macro_f1_mean"] == pytest.approx(0.80)
    assert timm_none["macro_f1_std"] == pytest.approx(0.10)  # ddof=1
    assert timm_none["weighted_f1_mean"] == pytest.approx(0.90)
    assert timm_none["macro_f1_n"] == 3
    constant = _cell(cells, "skin_texture", "handcrafted", "none")
    assert constant["macro_f1_std"] == pytest.approx(0.0)


def test_failed_rows_are_excluded_counted_and_listed(run_dir):
    cells = aggregate(read_results(run_dir))
    partial = _cell(cells, "skin_texture", TIMM, "classical")
    assert (partial["n_ok"], partial["n_failed"], partial["macro_f1_n"]) == (2, 1, 2)
    assert partial["macro_f1_mean"] == pytest.approx(0.15)
    assert partial["macro_f1_std"] == pytest.approx(math.sqrt(0.005))
    page = render(run_dir, "markdown")
    assert "Failures (1)" in page and OOM in page
    assert "0.15 ± 0.07 (n=2)" in page


def test_delta_columns_against_stratified_and_best_dummy(run_dir):
    cells = aggregate(read_results(run_dir))
    best_texture = _cell(cells, "skin_texture", TIMM, "none")
    assert best_texture["stratified_macro_f1"] == pytest.approx(0.32)
    assert best_texture["best_dummy_macro_f1"] == pytest.approx(0.35)  # uniform beats stratified here
    assert best_texture["delta_vs_stratified"] == pytest.approx(0.41 - 0.32)
    assert best_texture["delta_vs_best_dummy"] == pytest.approx(0.41 - 0.35)
    # 2 * std / sqrt(3) = 0.0611: above noise against stratified (+0.09), not against the best dummy (+0.06)
    assert best_texture["above_noise_vs_stratified"] and not best_texture["above_noise_vs_best_dummy"]


def test_delta_table_names_best_configurations(run_dir):
    table = _markdown_table(render(run_dir, "markdown"), "### Macro-F1 against chance")
    moisture, texture = table.loc["moisture"], table.loc["skin_texture"]
    assert moisture["stratified macro-F1"] == "0.55"
    assert moisture["handcrafted + logreg best"] == "0.65 (none/classical)"
    assert moisture["handcrafted + logreg Δ"] == "+0.10"  # 2·0.1/√3 = 0.115 > 0.10: no star
    assert moisture[f"{TIMM} + logreg best"] == "0.80 (none)"
    assert moisture[f"{TIMM} + logreg Δ"] == "+0.25*"
    assert moisture["best overall"] == f"{TIMM} / logreg / none"
    assert texture["handcrafted + logreg best"] == "0.40 (classical)"
    assert texture["best overall"] == f"{TIMM} / logreg / none"
    assert (texture["best macro-F1"], texture["Δ vs stratified"], texture["Δ vs best dummy"]) == ("0.41", "+0.09*", "+0.06")


def _markdown_table(page: str, heading: str) -> pd.DataFrame:
    lines = page.split(heading, 1)[1].split("\n\n")[2].splitlines()
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines if not line.startswith("|--")]
    return pd.DataFrame(rows[1:], columns=rows[0]).set_index("task")


def test_markdown_and_latex_show_the_numbers(run_dir):
    markdown = render(run_dir, "markdown")
    assert "0.80 ± 0.10" in markdown and "0.90 ± 0.10" in markdown  # macro- and weighted-F1
    assert "| most-frequent macro-F1" in markdown and "0.25" in markdown
    latex = render(run_dir, "latex")
    assert r"0.80 $\pm$ 0.10" in latex
    assert r"skin\_texture" in latex and "skin_texture" not in latex
    assert r"\toprule" in latex and "ddof=1" in latex


def test_html_escapes_every_name_and_embeds_images(tmp_path):
    run_dir = write_results(tmp_path / "run", timm_label="timm(model=<script>alert(1)</script>)")
    strip = io.BytesIO()
    Image.new("RGB", (4, 2), "red").save(strip, format="PNG")
    (run_dir / "synthetic_strip.png").write_bytes(strip.getvalue())
    page = render(run_dir, "html")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page
    assert "timm(model=&lt;script&gt;alert(1)&lt;/script&gt;)" in page
    assert base64.b64encode(strip.getvalue()).decode() in page
    assert page.count("data:image/png;base64,") == 2  # macro-F1 chart and the strip


def test_csv_is_a_tidy_aggregate_readable_by_pandas(run_dir):
    table = pd.read_csv(io.StringIO(render(run_dir, "csv")))
    assert len(table) == len(MODEL_F1) + len(DUMMY_F1)
    assert {"dataset", "task", "backbone", "augmenter", "head", "macro_f1_mean", "macro_f1_std", "macro_f1_n",
            "delta_vs_stratified", "n_failed"} <= set(table.columns)
    row = table[(table["task"] == "moisture") & (table["backbone_label"] == TIMM) & (table["augmenter"] == "none")]
    assert row["macro_f1_mean"].item() == pytest.approx(0.80)
    assert row["delta_vs_stratified"].item() == pytest.approx(0.25)


def test_plot_is_a_png(run_dir, tmp_path):
    out = write_plot(run_dir, tmp_path / "plots" / "macro_f1.png")
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5_000
    assert Image.open(out).size[0] > 400


def test_results_from_several_run_dirs_can_be_combined(tmp_path):
    first = read_results(write_results(tmp_path / "a"))
    second = read_results(write_results(tmp_path / "b")).assign(dataset="other")
    cells = aggregate(pd.concat([first, second], ignore_index=True))
    assert set(cells["dataset"]) == {"demo", "other"}
    assert len(cells) == 2 * (len(MODEL_F1) + len(DUMMY_F1))


def test_missing_results_and_unknown_format_are_explained(run_dir, tmp_path):
    with pytest.raises(SkinbenchError, match="results.csv does not exist"):
        render(tmp_path / "empty")
    with pytest.raises(SkinbenchError, match="markdown, latex, html, csv"):
        render(run_dir, "docx")


def test_markdown_keeps_table_shape_when_a_label_contains_a_pipe(tmp_path):
    run_dir = write_results(tmp_path / "run", timm_label="timm(model=a|b)")
    table = _markdown_table(render(run_dir, "markdown"), "### Macro-F1 against chance")
    assert table.loc["moisture", r"timm(model=a\|b) + logreg best"] == "0.80 (none)"


def test_augmentation_effect_is_paired_by_seed(run_dir):
    from skinbench.leaderboard.tables import augmentation_table

    frame = augmentation_table(read_results(run_dir), 2).frame.set_index(["backbone + head", "augmenter"])
    handcrafted, timm = frame.loc[("handcrafted + logreg", "classical")], frame.loc[(f"{TIMM} + logreg", "classical")]
    assert handcrafted["moisture"] == "0.00 (1/3)"          # +0.20, 0, -0.20
    assert handcrafted["skin_texture"] == "+0.10 (2/3)"     # -0.10, +0.10, +0.30: 0.10 < 2 × 0.2/√3
    assert timm["moisture"] == "-0.30* (0/3)"               # -0.30 on every seed
    assert timm["skin_texture"] == "-0.25* (0/2)"           # the failed seed has no pair
    assert "Augmentation effect" in render(run_dir, "markdown")
