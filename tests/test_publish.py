"""``skinbench publish``: the static site from a tiny real run, checked file by file (no browser)."""
from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from markupsafe import escape
from PIL import Image
from site_fixtures import HOSTILE_NAME, TEST_BOOTSTRAP, demo_suite

from skinbench.api import SkinbenchError
from skinbench.cli import main
from skinbench.hashing import file_digest
from skinbench.leaderboard import leaderboard_stats, read_results
from skinbench.leaderboard.plots import macro_f1_figure
from skinbench.leaderboard.site import publish
from skinbench.leaderboard.site.names import class_names, packaged_prompts, without_local_paths
from skinbench.execution.runner import run_suite
from skinbench.record.store import DUMMY_HEADS
from skinbench.configuration.suite import load_suite

pytest_plugins = ["site_fixtures"]  # the published_run fixture
pytestmark = pytest.mark.slow  # one tiny run and its publish, shared by the session: about 25 s on 2 cores
LINK = re.compile(r'(?:href|src)="([^"]+)"')


def pages(site: Path) -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in site.rglob("*.html")}


def task_page(site: Path, task: str) -> str:
    matches = [text for path, text in pages(site).items() if path.parent.name == "tasks" and f"</span> {task}</h1>" in text]
    assert len(matches) == 1, f"one page for task {task}"
    return matches[0]


def leaderboard_rows(page: str) -> list[str]:
    body = page.split('id="leaderboard"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)


def test_every_link_resolves_inside_the_site_and_nothing_is_fetched_from_outside(published_run):
    site = published_run.site
    for path, text in pages(site).items():
        for target in LINK.findall(text):
            assert not re.match(r"^(https?:)?//", target), f"{path.name} fetches {target}"
            if target.startswith("#"):
                continue
            resolved = (path.parent / html.unescape(target).split("#")[0]).resolve()
            assert resolved.is_file() and site.resolve() in resolved.parents, f"{path.name}: broken link {target}"
    assert published_run.published.pages == len(pages(site)) == 3  # index + moisture + texture
    assert published_run.published.bytes == sum(p.stat().st_size for p in site.rglob("*") if p.is_file())


def test_user_strings_stay_text_and_local_paths_stay_out(published_run):
    everything = "\n".join(pages(published_run.site).values())
    assert HOSTILE_NAME not in everything and "<b>clinic" not in everything
    assert str(escape(HOSTILE_NAME)) in everything
    assert everything.count("<script") == everything.count('<script src="') == len(pages(published_run.site))
    assert str(published_run.run_dir) not in everything  # nor the cache: absolute paths become file names
    assert str(Path.home()) not in everything
    for svg in published_run.site.glob("figures/*/*.svg"):  # a browser runs scripts in an SVG opened alone
        assert "<script" not in svg.read_text() and "<b>" not in svg.read_text(), svg.name
    forest = next(published_run.site.glob("figures/*/forest.svg")).read_text()
    assert html.escape(HOSTILE_NAME, quote=False) in forest  # and '$x^2$' stays text, not a formula


def test_table_shows_the_bootstrap_statistics_of_every_configuration(published_run):
    stats = leaderboard_stats(read_results(published_run.run_dir), n_boot=TEST_BOOTSTRAP, seed=0)
    models = stats.configurations[~stats.configurations["head"].isin(DUMMY_HEADS)]
    assert models["verdict"].notna().all()
    for task, configs in models.groupby("task"):
        rows = leaderboard_rows(task_page(published_run.site, task))
        assert len(rows) == len(configs) == 2
        order = configs.sort_values("macro_f1_mean", ascending=False)
        for row, (_, config) in zip(rows, order.iterrows()):
            assert f"predictions/{config['cell_id']}.parquet" in row  # best mean first
            low, high = config["macro_f1_ci_low"], config["macro_f1_ci_high"]
            assert 0 <= low <= config["macro_f1_mean"] <= high <= 1
            assert f"{config['macro_f1_mean']:.2f} [{low:.2f}, {high:.2f}]" in row
            assert {"above_chance": "above chance", "chance": "chance", "below_chance": "below chance"}[config["verdict"]] in row
            assert ("best" if config["tied_with_best"] else "below best") in row
        assert ("QWK [95% CI]" in task_page(published_run.site, task)) == (task == "texture")  # ordinal only


def test_calibration_metrics_are_stored_and_shown(published_run):
    results = read_results(published_run.run_dir)
    ok = results[results["status"] == "ok"]
    for metric in ("ece", "brier", "nll"):
        assert ok[metric].notna().all() and (ok[metric] >= 0).all(), metric
    assert (ok["ece"] <= 1).all() and (ok["brier"] <= 2).all()
    page = task_page(published_run.site, "moisture")
    for header in (">ECE<", ">Brier<", ">NLL<", "Reliability diagrams"):
        assert header in page
    svg = next(published_run.site.glob("figures/*/reliability.svg")).read_text()
    assert "Reliability" in svg and "chance accuracy" in svg and "calibrated" in svg


def test_figures_have_titles_chance_lines_and_class_names(published_run):
    site = published_run.site
    for name, title, reference in (("forest.svg", "against chance", "chance (Δ = 0)"),
                                   ("augmentation.svg", "Does augmentation help?", "no effect"),
                                   ("subgroup-skin-tone", "Macro-F1 by skin_tone", "chance on the whole test set")):
        files = sorted(site.glob(f"figures/*/{name}*"))
        assert len(files) == 2, name  # one per task
        for path in files:
            text = path.read_text()
            assert title in text and reference in text, (path, title)
    strips = sorted(site.glob("figures/*/strip.png"))
    assert len(strips) == 2 and all(Image.open(p).size[0] > 300 for p in strips)
    moisture = task_page(site, "moisture")
    assert "Low moisture" in moisture and "Hydrated skin" in moisture  # the demo binarises moisture: merged class


def test_readable_class_names_come_from_the_prompt_file():
    prompts = [packaged_prompts()]
    assert class_names("moisture", ["-1", "0", "1"], prompts) == {
        "-1": "Low moisture", "0": "Average moisture", "1": "High moisture"}
    assert class_names("moisture", [-1.0, 0.0], prompts) == {"-1": "Low moisture", "0": "Hydrated skin"}
    assert class_names("severity", ["mild", "severe"], prompts) == {"mild": "mild", "severe": "severe"}


def test_local_paths_are_reduced_to_file_names():
    assert without_local_paths("generic-csv(csv=/home/ana/clinic/photos.csv, ordinal=True)") == \
        "generic-csv(csv=photos.csv, ordinal=True)"
    assert without_local_paths(r"weights=C:\models\vit.safetensors") == "weights=vit.safetensors"
    assert without_local_paths("model=hf-hub:timm/vit_small, see https://example.org/a/b") == \
        "model=hf-hub:timm/vit_small, see https://example.org/a/b"


def test_provenance_panel_names_commit_splits_and_plugin_identities(published_run):
    index = (published_run.site / "index.html").read_text(encoding="utf-8")
    provenance = index.split('id="provenance"', 1)[1]
    receipt = yaml.safe_load((published_run.run_dir / "receipt.json").read_text())
    assert f'<code class="commit">{receipt["git_commit"] or "unknown"}' in provenance
    assert receipt["device"] in provenance and receipt["time"] in provenance
    for split in (published_run.run_dir / "split").glob("*.json"):
        assert file_digest(split) in provenance
    suite = yaml.safe_load((published_run.run_dir / "suite.yaml").read_text())
    for kind in ("datasets", "backbones", "augmenters", "heads"):
        for entry in suite[kind]:
            assert entry["identity"]["digest"] in provenance and entry["identity"]["code"] in provenance
    assert "scikit-learn" in provenance and receipt["packages"]["scikit-learn"] in provenance


def test_downloads_are_the_run_files_and_per_cell_predictions(published_run):
    data = next((published_run.site / "data").iterdir())
    for name in ("results.csv", "results.parquet", "suite.yaml", "receipt.json", "generation_log.csv"):
        assert (data / name).read_bytes() == (published_run.run_dir / name).read_bytes(), name
    assert sorted(p.name for p in (data / "split").iterdir()) == sorted(p.name for p in (published_run.run_dir / "split").iterdir())
    results = read_results(published_run.run_dir)
    model = results[~results["head"].isin(DUMMY_HEADS)].iloc[0]
    frame = pd.read_parquet(data / "predictions" / f"{model['cell_id']}.parquet")
    assert set(frame["seed"]) == {0, 1} and set(frame["split"]) == {0}
    assert {"image", "group", "y_true", "y_pred"} <= set(frame.columns)
    proba = frame[[c for c in frame.columns if c.startswith("proba_")]].to_numpy()
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)


def test_the_rerun_command_recomputes_the_same_cell(published_run, tmp_path):
    page = task_page(published_run.site, "texture")
    row = leaderboard_rows(page)[0]
    command = html.unescape(re.search(r'<code class="command">(.*?)</code>', row).group(1)).split()
    cell = command[command.index("--cell") + 1]
    suite_link = re.search(r'href="\.\./([^"]+\.yaml)"', row).group(1)
    assert command[:3] == ["skinbench", "run", Path(suite_link).name]
    rerun = run_suite(load_suite(published_run.site / suite_link), tmp_path / "rerun", cells=[cell])
    again = rerun[rerun["cell_id"] == cell].sort_values("seed")
    original = read_results(published_run.run_dir)
    original = original[original["cell_id"] == cell].sort_values("seed")
    assert len(again) == len(original) == 2
    np.testing.assert_allclose(again["macro_f1"].to_numpy(float), original["macro_f1"].to_numpy(float))
    np.testing.assert_allclose(again["ece"].to_numpy(float), original["ece"].to_numpy(float))


def test_publish_never_replaces_a_foreign_folder(published_run, tmp_path):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(SkinbenchError, match="not a site written by `skinbench publish`"):
        publish([published_run.run_dir], foreign, n_boot=20)
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]


def test_cli_publish_replaces_a_site_it_wrote_and_reports_bad_input(published_run, tmp_path, capsys):
    site = tmp_path / "site"
    shutil.copytree(published_run.site, site)
    (site / "stale.html").write_text("from an older publish")
    assert main(["publish", str(published_run.run_dir), "--out", str(site), "--n-boot", "20"]) == 0
    assert f"open {site / 'index.html'}" in capsys.readouterr().out
    assert (site / "index.html").exists() and not (site / "stale.html").exists()
    assert main(["publish", str(tmp_path / "nothing"), "--out", str(tmp_path / "site2")]) == 2
    assert "holds no results" in capsys.readouterr().err and not (tmp_path / "site2").exists()


def test_macro_f1_chart_has_a_title_and_intervals_inside_the_metric_range(published_run):
    figure = macro_f1_figure(read_results(published_run.run_dir), dataset_names={"x": "y"}, n_boot=TEST_BOOTSTRAP)
    axes = figure.axes[0]
    assert axes.get_title(loc="left").startswith("Macro-F1 per task: ")
    tops = [segment[:, 1].max() for container in axes.containers if hasattr(container, "lines")
            for collection in container.lines[2] for segment in collection.get_segments()]
    assert tops and max(tops) <= 1.0 and axes.get_ylim()[1] > 1.0  # bars end at 1 and are not cut
    assert "stratified chance" in [t.get_text() for t in figure.legends[0].get_texts()]


def test_rerun_suite_validates(published_run):
    for path in published_run.site.glob("data/*/rerun/*.yaml"):
        suite = load_suite(path)
        assert [d.label for d in suite.datasets] == [demo_suite()["datasets"][0]["label"]]
        assert len(suite.backbones) == len(suite.augmenters) == len(suite.heads) == 1
