"""The zero-shot and text-init heads: what their text prior carries, what they read, and how they run.

``ClassMeans`` is a text backbone whose text embeddings are given by the test (each class description
maps to a vector), so the heads' behaviour can be checked against a known truth; the end-to-end test
runs the real tiny open_clip model through the runner.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import tiny_suite
from skinbench.api import ClassNames, Part
from skinbench.cli import main
from skinbench.execution.runner import run_suite
from skinbench.leaderboard import read_results
from skinbench.leaderboard.stats import leaderboard_stats
from skinbench.plugins.heads.text_init import TextInitHead
from skinbench.plugins.heads.zero_shot import ZeroShotHead
from skinbench.record.identity import cell_id
from skinbench.testing import build_tiny_open_clip

CLASSES = ClassNames("synthetic", "kind", ("a", "b", "c"))


class ClassMeans:
    """Text embeddings chosen by the test: the description ``class-<key>`` is the vector ``vectors[key]``."""

    label = "class-means"

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors = vectors

    def embed_text(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.vectors[t.split("class-")[1].rstrip(".")] for t in texts]).astype(np.float32)

    def logit_scale(self) -> float:
        return 100.0


def prompt_file(path, classes=("a", "b", "c")) -> str:
    path.write_text(json.dumps({"templates": ["a photo of {}."],
                                "tasks": {"kind": {"classes": {c: [f"class-{c}"] for c in classes}}}}))
    return str(path)


def clusters(n: int, seed: int, dim: int = 16):
    """Three classes of unit embeddings around random class means, and those means."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(3, dim))
    y = rng.integers(0, 3, n)
    x = means[y] + rng.normal(scale=0.8, size=(n, dim))
    return Part(paths=[f"i{i}" for i in range(n)], y=y, groups=np.arange(n).astype(str), x=x.astype(np.float32)), means


def macro_f1(head, train, val, test, backbone) -> float:
    from skinbench.calibration import macro_f1 as score

    head.fit(train, val, 3, 0, backbone=backbone, classes=CLASSES)
    return score(test.y, head.predict(test).labels)


def balanced_accuracy(head, train, test, backbone) -> float:
    """Chance is 1/K for any predictor independent of the labels, whatever it predicts."""
    from sklearn.metrics import balanced_accuracy_score

    head.fit(train, train, 3, 0, backbone=backbone, classes=CLASSES)
    return balanced_accuracy_score(test.y, head.predict(test).labels)


def test_zero_shot_with_matching_prompts_beats_chance_and_with_uninformative_prompts_is_at_chance(tmp_path):
    test, means = clusters(3000, seed=0)
    train, _ = clusters(60, seed=1)
    prompts = prompt_file(tmp_path / "p.json")
    matching = ClassMeans(dict(zip("abc", means)))
    # texts orthogonal to every class mean: an image's similarity to them is its noise alone, whatever its class
    basis, _ = np.linalg.qr(means.T)
    random = np.random.default_rng(2).normal(size=(3, means.shape[1]))
    uninformative = ClassMeans(dict(zip("abc", random - random @ basis @ basis.T)))
    assert balanced_accuracy(ZeroShotHead(prompts=prompts), train, test, matching) > 0.9
    assert abs(balanced_accuracy(ZeroShotHead(prompts=prompts), train, test, uninformative) - 1 / 3) < 0.05


def test_zero_shot_reads_no_label_unless_calibrating(tmp_path):
    test, means = clusters(200, seed=0)
    train, _ = clusters(60, seed=1)
    backbone = ClassMeans(dict(zip("abc", means)))
    prompts = prompt_file(tmp_path / "p.json")
    relabelled = Part(train.paths, (train.y + 1) % 3, train.groups, train.x)
    predictions = []
    for part in (train, relabelled):
        head = ZeroShotHead(prompts=prompts)
        head.fit(part, part, 3, 0, backbone=backbone, classes=CLASSES)
        predictions.append(head.predict(test).proba)
    np.testing.assert_array_equal(*predictions)
    calibrated = ZeroShotHead(prompts=prompts, calibrate="temperature")
    calibrated.fit(train, relabelled, 3, 0, backbone=backbone, classes=CLASSES)
    assert not np.allclose(calibrated.predict(test).proba, predictions[0])
    assert (ZeroShotHead().labelled_images, calibrated.labelled_images) == ("none", "validation")


def test_text_init_starts_at_the_text_and_learns_where_the_text_is_wrong(tmp_path):
    test, means = clusters(1000, seed=0)
    train, _ = clusters(300, seed=0)
    prompts = prompt_file(tmp_path / "p.json")
    wrong = ClassMeans(dict(zip("abc", means[[1, 2, 0]])))  # every class's text describes another class
    held = TextInitHead(prompts=prompts, pull=1e6, tune_threshold=False)
    zero_shot = ZeroShotHead(prompts=prompts)
    for head in (held, zero_shot):
        head.fit(train, train, 3, 0, backbone=wrong, classes=CLASSES)
    np.testing.assert_array_equal(held.predict(test).labels, zero_shot.predict(test).labels)
    assert macro_f1(TextInitHead(prompts=prompts, pull=0.0, lr=1e-2), train, train, test, wrong) > 0.8
    assert macro_f1(ZeroShotHead(prompts=prompts), train, train, test, wrong) < 0.1


def test_prompts_and_calibration_are_in_the_cell_id(tmp_path):
    prompts = tmp_path / "p.json"
    ids = []
    for text, calibrate in (("class-a", "none"), ("class-a", "temperature"), ("class-z", "none")):
        prompts.write_text(json.dumps({"templates": ["{}"], "tasks": {"kind": {"classes": {"a": text}}}}))
        head = ZeroShotHead(prompts=str(prompts), calibrate=calibrate)
        ids.append(cell_id("data", "kind", "backbone", "none", head, {}))
    assert len(set(ids)) == 3


def test_every_shipped_task_has_prompts_for_its_classes():
    from skinbench.datasets.ham10000 import DIAGNOSES
    from skinbench.datasets.scin import TONE_TASKS

    tasks = [ClassNames("demo", "moisture", ("-1", "0")), ClassNames("demo", "elasticity", ("-1", "0", "1")),
             ClassNames("cosmetic-csv", "hyperpigmentation", ("-1", "0", "1")),
             ClassNames("ham10000", "dx", tuple(DIAGNOSES)), ClassNames("ham10000", "melanoma", ("other", "melanoma")),
             ClassNames("ddi", "malignant", ("benign", "malignant")),
             ClassNames("eczema", "severity", ("0", "1", "2", "3")),
             ClassNames("scin", "condition", ("Eczema", "Some rare rash", "other")),
             *(ClassNames("scin", name, tuple(classes)) for name, (_, classes) in TONE_TASKS.items())]
    for task in tasks:
        assert ZeroShotHead().class_problems(task) == [], task
    problems = ZeroShotHead().class_problems(ClassNames("ham10000", "dx", ("mel", "unknown")))
    assert "describes no class ['unknown']" in problems[0] and "head 'zero-shot'" in problems[0]


def write_suite(path, **overrides) -> str:
    path.write_text(json.dumps(tiny_suite(**overrides)))
    return str(path)


def test_a_text_head_on_an_image_only_backbone_fails_validate_naming_both(tmp_path, capsys):
    suite = write_suite(tmp_path / "s.yaml", heads=[{"name": "zero-shot"}, {"name": "logreg"}])
    assert main(["validate", suite]) == 2
    err = capsys.readouterr().err
    assert "head 'zero-shot' needs text embeddings, which backbone 'handcrafted(size=32)' cannot give" in err


def test_a_task_without_prompts_fails_validate(tmp_path, capsys):
    folder = build_tiny_open_clip(tmp_path / "clip")
    suite = write_suite(tmp_path / "s.yaml", backbones=[{"name": "open-clip", "params": {"model": str(folder)}}],
                        heads=[{"name": "text-init", "params": {"prompts": prompt_file(tmp_path / "p.json")}}])
    assert main(["validate", suite]) == 2
    assert "has no task 'moisture' under 'tasks'" in capsys.readouterr().err


@pytest.mark.slow
def test_zero_shot_text_init_and_logreg_rows_side_by_side(tmp_path):
    """Zero-shot rows are ordinary configurations (intervals, verdicts) and the site marks them."""
    folder = build_tiny_open_clip(tmp_path / "clip")
    heads = [{"name": "zero-shot"}, {"name": "zero-shot", "params": {"calibrate": "temperature"}},
             {"name": "text-init"}, {"name": "logreg"}]
    suite = write_suite(tmp_path / "s.yaml", backbones=[{"name": "open-clip", "params": {"model": str(folder)}}],
                        heads=heads)
    assert main(["run", suite, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    rows = read_results(tmp_path / "run")
    assert (rows["status"] == "ok").all()
    stats = leaderboard_stats(rows, n_boot=200).configurations
    zero_shot = stats[stats["head_label"] == "zero-shot"]
    assert len(zero_shot) == 5  # one configuration per demo task
    assert zero_shot["verdict"].isin(["above_chance", "chance", "below_chance"]).all()
    assert (zero_shot["macro_f1_ci_low"] <= zero_shot["macro_f1_mean"]).all()
    assert set(stats["head_label"]) >= {"zero-shot", "zero-shot(calibrate=temperature)", "text-init", "logreg"}
    assert main(["publish", str(tmp_path / "run"), "--out", str(tmp_path / "site")]) == 0
    page = next((tmp_path / "site").rglob("*moistur*.html")).read_text()
    assert page.count("no labelled training images") == 2  # the two zero-shot rows, not text-init nor logreg
