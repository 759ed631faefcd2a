"""A rerun of a finished suite does no work it can avoid: registering plugins and resolving identities import
no torch, timm or scikit-learn, and the end-of-run leaderboard is reused while nothing it reads has changed.
(How fast that is, is measured by ``benchmarks/rerun_speed.py``, not asserted here.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from skinbench.cli import main
from skinbench.devices import PRECISIONS, device_type, no_gpu_here, precision_label, precision_name, resolve_device, \
    resolve_precision
from skinbench.record.rendered import KEPT, report_key

HEAVY = ("torch", "torchvision", "timm", "sklearn", "diffusers", "transformers", "open_clip", "statsmodels",
         "matplotlib", "skimage")


def imported_after(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has imported after running ``code``."""
    probe = textwrap.dedent(code) + f"\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_registering_every_built_in_plugin_imports_no_heavy_library():
    assert imported_after("""
        import skinbench.configuration.registry as registry
        catalogue = registry.load_catalogue(autoload=False)
        assert len(catalogue.names("backbone")) > 5 and len(catalogue.names("head")) > 5
        for kind in ("backbone", "augmenter", "head", "dataset"):
            for name in catalogue.names(kind):
                catalogue.entries[kind][name].cls.Params.model_json_schema()  # parameters are readable too
    """) == []


def test_the_sdk_resolves_every_declared_name_lazily():
    import skinbench.sdk as sdk

    assert sorted(sdk.__all__) == sorted(sdk._HOME) == dir(sdk)
    for name in sdk.__all__:
        assert getattr(sdk, name) is getattr(sys.modules[sdk._HOME[name]], name)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        sdk.nothing_here  # noqa: B018


@pytest.mark.skipif(not no_gpu_here(), reason="with a GPU present, resolving the device needs torch")
def test_the_demo_plugins_resolve_their_identities_without_torch_or_sklearn():
    assert imported_after("""
        from skinbench.configuration.registry import load_catalogue
        catalogue = load_catalogue(autoload=False)
        for kind, name in (("backbone", "efficientnet-lite0"), ("backbone", "handcrafted"), ("head", "logreg"),
                           ("augmenter", "classical"), ("augmenter", "none")):
            assert catalogue.create(kind, name).identity.digest
    """) == []


def test_device_and_precision_without_torch_agree_with_torch():
    for name in ("auto", "cpu"):
        device = resolve_device(name)
        assert device_type(name) == device.type
        for precision in PRECISIONS:
            assert precision_label(precision, device.type) == precision_name(resolve_precision(precision, device))


def test_a_torch_backbone_code_digest_covers_its_torch_modules_imported_or_not():
    digest = "from skinbench.plugins.backbones.efficientnet_lite0 import EfficientNetLite0 as B\n" \
             "from skinbench.record.identity import _modules_of, code_digest\n" \
             "assert 'skinbench.torch_modules' in _modules_of(B)\nprint(code_digest(B))"
    cold = subprocess.run([sys.executable, "-c", digest], capture_output=True, text=True)
    warm = subprocess.run([sys.executable, "-c", "import skinbench.torch_modules\n" + digest],
                          capture_output=True, text=True)
    assert cold.returncode == 0 and warm.returncode == 0, cold.stderr + warm.stderr
    assert cold.stdout == warm.stdout


def test_the_report_key_follows_every_input(tmp_path):
    run = tmp_path / "run"
    (run / "predictions").mkdir(parents=True)
    (run / "split").mkdir()
    inputs = {"results.jsonl": "{}\n", "suite.yaml": "name: a\n", "split/demo.json": "{}",
              "predictions/c_s0.parquet": "x"}
    for name, text in inputs.items():
        (run / name).write_text(text)
    key = report_key(run)
    assert report_key(run) == key
    for name in inputs:
        path = run / name
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        if name.startswith("predictions/"):
            assert report_key(run) != key, name  # a rewritten prediction file
        path.write_text(path.read_text() + " ")
        changed = report_key(run)
        assert changed != key, name
        key = changed


@pytest.mark.slow
def test_a_finished_run_reuses_its_leaderboard_until_a_result_changes(tmp_path, capsys, suite_factory, monkeypatch):
    import skinbench.leaderboard as leaderboard

    suite, out = tmp_path / "suite.yaml", tmp_path / "run"
    suite.write_text(yaml.safe_dump(suite_factory(protocol={"seeds": [0], "dummy_draws": 200})))
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    first = capsys.readouterr().out
    assert (out / KEPT).exists() and "| hyperpigmentation" in first

    computed = []
    build_report = leaderboard.build_report
    monkeypatch.setattr(leaderboard, "build_report", lambda *a, **k: computed.append(1) or build_report(*a, **k))
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    rerun = capsys.readouterr().out
    assert computed == [] and rerun.split("\n", 2)[2] == first.split("\n", 2)[2]  # all but the timing line
    assert main(["run", str(suite), "--out", str(out), "--no-progress", "--format", "latex"]) == 0
    assert computed == [] and "\\begin{tabular}" in capsys.readouterr().out  # another format: kept too

    (out / "leaderboard.html").unlink()  # a file it wrote is gone: computed again
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    assert computed == [1] and (out / "leaderboard.html").exists()
    capsys.readouterr()

    suite.write_text(yaml.safe_dump(suite_factory(protocol={"seeds": [0, 1], "dummy_draws": 200})))
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0  # new results: a new leaderboard
    grown = capsys.readouterr().out
    assert computed == [1, 1] and grown != rerun
    fresh = leaderboard.render_report(build_report(leaderboard.read_results(out)), "markdown", [])
    assert fresh in grown
