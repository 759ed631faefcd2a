"""The torch-trained heads (mlp, finetune), their typed parameters, and the shared calibration functions."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from skinbench.api import Backbone, ConfigError, Part, PluginError
from skinbench.calibration import (
    DecisionRule,
    apply_threshold,
    fit_temperature,
    macro_f1,
    softmax,
    tune_binary_threshold,
)
from skinbench.sdk import PooledFeatures
from skinbench.plugins.heads.finetune import minority_sampler, trainable_tail
from skinbench.configuration.registry import load_catalogue


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The tiny models here run faster on one thread, and far faster when other processes share the CPUs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_head(name: str, **params):
    return load_catalogue(autoload=False).create("head", name, params)


# ------------------------------------------------------------------ mlp
def blobs(n_per_class: int, n_classes: int, seed: int, dim: int = 16) -> Part:
    """Gaussian blobs around well-separated centres: linearly separable."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 4, size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = (centres[y] + rng.normal(0, 1, size=(len(y), dim))).astype(np.float32)
    return Part(paths=[f"s{i}.png" for i in range(len(y))], y=y, groups=np.arange(len(y)), x=x)


def test_mlp_learns_a_linearly_separable_problem():
    train, val, test = blobs(40, 3, seed=0), blobs(5, 3, seed=1), blobs(30, 3, seed=2)
    head = make_head("mlp", device="cpu")
    head.fit(train, val, n_classes=3, seed=0)
    prediction = head.predict(test)
    assert prediction.proba.shape == (90, 3)
    np.testing.assert_allclose(prediction.proba.sum(axis=1), 1.0, rtol=1e-6)
    assert macro_f1(test.y, prediction.labels) > 0.9


def test_mlp_is_deterministic_for_a_seed_and_varies_across_seeds():
    train, val, test = blobs(20, 2, seed=0), blobs(4, 2, seed=1), blobs(10, 2, seed=2)

    def proba(seed):
        head = make_head("mlp", device="cpu", epochs=5, class_weight="balanced")
        head.fit(train, val, n_classes=2, seed=seed)
        return head.predict(test).proba

    np.testing.assert_array_equal(proba(3), proba(3))
    assert not np.allclose(proba(3), proba(4))


def test_mlp_keeps_k_columns_when_a_class_is_missing_from_train_and_val():
    full = blobs(20, 3, seed=0)
    train_rows, val_rows = full.y < 2, full.y == 0  # class 2 never seen; val has class 0 only
    subset = lambda rows: Part([p for p, r in zip(full.paths, rows) if r], full.y[rows], full.groups[rows], full.x[rows])
    head = make_head("mlp", device="cpu", epochs=10)
    head.fit(subset(train_rows), subset(val_rows), n_classes=3, seed=0)
    prediction = head.predict(blobs(5, 3, seed=5))
    assert prediction.proba.shape == (15, 3)
    np.testing.assert_allclose(prediction.proba.sum(axis=1), 1.0, rtol=1e-6)


def test_mlp_gives_the_same_bits_whatever_the_callers_torch_threads():
    train, val, test = blobs(30, 3, seed=0), blobs(6, 3, seed=1), blobs(10, 3, seed=2)

    def proba(threads: int) -> np.ndarray:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            head = make_head("mlp", device="cpu", epochs=4)
            head.fit(train, val, n_classes=3, seed=1)
            assert torch.get_num_threads() == threads  # the caller's setting is restored
            return head.predict(test).proba
        finally:
            torch.set_num_threads(previous)

    np.testing.assert_array_equal(proba(2), proba(1))


def test_mlp_temperature_is_fitted_on_validation_and_keeps_the_decisions():
    train, val, test = blobs(30, 3, seed=0), blobs(8, 3, seed=1), blobs(10, 3, seed=2)
    plain = make_head("mlp", device="cpu", epochs=5)
    tempered = make_head("mlp", device="cpu", epochs=5, temperature=True)
    plain.fit(train, val, n_classes=3, seed=0)
    tempered.fit(train, val, n_classes=3, seed=0)
    val_logits = tempered._logits(tempered._inputs(val.x))
    assert plain.decision.temperature == 1.0
    assert tempered.decision.temperature == pytest.approx(fit_temperature(val_logits, val.y))
    assert tempered.decision.temperature != pytest.approx(1.0, abs=0.05)
    np.testing.assert_array_equal(tempered.predict(test).labels, plain.predict(test).labels)
    assert not np.allclose(tempered.predict(test).proba, plain.predict(test).proba)


def test_mlp_batch_size_is_part_of_the_identity_and_device_is_not():
    default = make_head("mlp")
    assert make_head("mlp", batch_size=32).identity.digest != default.identity.digest
    assert make_head("mlp", device="cpu").identity.params == default.identity.params
    assert make_head("mlp", device="cpu").identity.artefacts["device_type"] == "cpu"


@pytest.mark.parametrize("head, params, key", [
    ("mlp", {"class_weight": "inverse"}, "class_weight"), ("mlp", {"batch_size": 0}, "batch_size"),
    ("mlp", {"dropout": 1.0}, "dropout"), ("mlp", {"device": "gpu"}, "device"), ("mlp", {"epochs": "50"}, "epochs"),
    ("finetune", {"crop_scale": [1.0, 0.5]}, "crop_scale"), ("finetune", {"precision": "fp8"}, "precision"),
    ("finetune", {"minority_fraction": 1.5}, "minority_fraction"), ("finetune", {"patience": 0}, "patience"),
])
def test_torch_heads_name_the_bad_key(head, params, key):
    with pytest.raises(ConfigError, match=f"head '{head}': '{key}'"):
        make_head(head, **params)


# ----------------------------------------------------------- calibration
def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    return float(torch.nn.functional.cross_entropy(torch.tensor(logits / temperature), torch.tensor(y)))


def test_temperature_scaling_softens_over_confident_logits():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=400)
    predicted = np.where(rng.random(400) < 0.7, y, rng.integers(0, 3, size=400))  # 70-80 % right
    logits = 12.0 * np.eye(3)[predicted]  # but ~100 % confident
    temperature = fit_temperature(logits, y)
    assert temperature > 2.0
    assert nll(logits, y, temperature) < 0.5 * nll(logits, y, 1.0)


def test_temperature_sharpens_under_confident_logits():
    y = np.repeat([0, 1], 50)
    logits = 0.2 * np.eye(2)[y]  # always right, barely confident
    assert fit_temperature(logits, y) < 1.0


def test_temperature_ignores_classes_the_head_cannot_predict():
    """-inf logits (a class absent from training) keep probability 0 and their rows are left out of the fit."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=200)
    logits = 8.0 * np.eye(2)[np.where(rng.random(200) < 0.8, y, 1 - y)]
    with_absent = np.concatenate([logits, np.full((200, 1), -np.inf)], axis=1)
    temperature = fit_temperature(logits, y)
    assert fit_temperature(with_absent, y) == pytest.approx(temperature)
    two_rows_of_the_absent_class = np.concatenate([with_absent, with_absent[:2]]), np.concatenate([y, [2, 2]])
    assert fit_temperature(*two_rows_of_the_absent_class) == pytest.approx(temperature)
    assert (softmax(with_absent, temperature)[:, 2] == 0).all()


def test_decision_rule_without_validation_is_softmax_and_argmax():
    rule = DecisionRule.fit(np.zeros((0, 2)), np.zeros(0, np.int64), temperature=True, threshold=True)
    assert rule == DecisionRule(temperature=1.0, threshold=None)
    prediction = rule.predict(np.array([[0.0, 1.0], [2.0, 0.0]]))
    np.testing.assert_allclose(prediction.proba, softmax(np.array([[0.0, 1.0], [2.0, 0.0]])))
    np.testing.assert_array_equal(prediction.labels, [1, 0])


def test_threshold_tuning_finds_the_gap_between_classes():
    negatives = np.linspace(0.05, 0.27, 20)
    positives = np.linspace(0.33, 0.45, 10)
    proba_pos, y = np.concatenate([negatives, positives]), np.repeat([0, 1], [20, 10])
    threshold = tune_binary_threshold(proba_pos, y)
    assert threshold == pytest.approx(0.30)
    assert macro_f1(y, apply_threshold(proba_pos, threshold)) == 1.0
    np.testing.assert_array_equal(apply_threshold(np.stack([1 - proba_pos, proba_pos], axis=1), threshold), y)


# -------------------------------------------------------------- finetune
class TinyViTBackbone(Backbone):
    """A random-init 4-block ViT on 32 px inputs exposing the fine-tuning interface."""

    name = "tiny-vit"
    params = {}
    feature_dim = 32

    def __init__(self, **overrides):
        super().__init__(**overrides)
        torch.manual_seed(0)
        self.model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8,
                                       depth=4, embed_dim=32, num_heads=2, num_classes=0)

    def torch_module(self) -> torch.nn.Module:
        return self.model

    def data_config(self) -> dict:
        return {"input_size": (3, 32, 32), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                "interpolation": "bicubic", "crop_pct": 1.0}


@pytest.fixture(scope="module")
def colour_parts(tmp_path_factory):
    """Two (or three) classes that differ only by colour, 40 px PNGs, noisy pixels."""
    folder = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    colours = [(200, 60, 60), (60, 60, 200), (60, 200, 60)]

    def part(name, labels):
        paths = []
        for i, label in enumerate(labels):
            pixels = np.clip(np.array(colours[label]) + rng.normal(0, 25, size=(40, 40, 3)), 0, 255)
            path = folder / f"{name}_{i}_{label}.png"
            Image.fromarray(pixels.astype(np.uint8)).save(path)
            paths.append(str(path))
        y = np.asarray(labels, dtype=np.int64)
        return Part(paths=paths, y=y, groups=np.arange(len(y)))

    return {
        "train": part("train", [0] * 18 + [1] * 10),  # imbalanced: exercises the minority sampler
        "val": part("val", [0, 0, 0, 1, 1, 1]),
        "test": part("test", [0] * 6 + [1] * 6),
        "train3": part("train3", [0] * 8 + [1] * 8),  # 3-class task, class 2 absent
        "val3": part("val3", [0, 1]),
    }


FAST = dict(image_size=32, resize=40, head_width=64, warmup_epochs=1, finetune_epochs=2, unfreeze_blocks=2,
            warmup_lr=1e-3, finetune_lr=1e-3, device="cpu", progress=False)


def parameters(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def test_finetune_runs_end_to_end_and_learns_colours(colour_parts):
    backbone = TinyViTBackbone()
    original = parameters(backbone.torch_module())
    head = make_head("finetune", **FAST)
    head.fit(colour_parts["train"], colour_parts["val"], n_classes=2, seed=0, backbone=backbone)
    prediction = head.predict(colour_parts["test"])

    assert prediction.proba.shape == (12, 2)
    assert np.all((prediction.proba >= 0) & (prediction.proba <= 1))
    np.testing.assert_allclose(prediction.proba.sum(axis=1), 1.0, rtol=1e-6)
    assert 0.2 <= head.decision.threshold <= 0.8 and head.decision.temperature > 0
    assert (prediction.labels == colour_parts["test"].y).mean() >= 0.75  # chance is 0.5
    for name, before in original.items():  # the runner's backbone is untouched
        torch.testing.assert_close(backbone.torch_module().get_parameter(name), before, rtol=0, atol=0)


def test_finetune_trains_only_the_last_blocks_and_final_norm(colour_parts):
    backbone = TinyViTBackbone()
    before = parameters(backbone.torch_module())
    no_val = Part(paths=[], y=np.zeros(0, np.int64), groups=np.zeros(0))  # no selection: keeps the last epoch
    head = make_head("finetune", **{**FAST, "tta": False})
    head.fit(colour_parts["train"], no_val, n_classes=2, seed=0, backbone=backbone)
    after = parameters(head.net[0])
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    trainable_prefixes = ("blocks.2.", "blocks.3.", "norm.")
    assert changed, "fine-tuning changed no encoder weight"
    assert all(name.startswith(trainable_prefixes) for name in changed), sorted(changed)
    assert any(name.startswith("blocks.2.") for name in changed) and any(name.startswith("norm.") for name in changed)


def test_finetune_is_deterministic_and_handles_a_class_absent_from_train(colour_parts):
    def proba():
        head = make_head("finetune", **{**FAST, "tta": False, "finetune_epochs": 1})
        head.fit(colour_parts["train3"], colour_parts["val3"], n_classes=3, seed=1, backbone=TinyViTBackbone())
        return head.predict(colour_parts["test"]).proba

    first = proba()
    assert first.shape == (12, 3)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(first, proba())


def test_finetune_needs_a_torch_backbone(colour_parts):
    class EmbeddingOnly(Backbone):
        name = "embedding-only"

    with pytest.raises(PluginError, match="needs a torch backbone"):
        make_head("finetune", **FAST).fit(colour_parts["val"], colour_parts["val"], 2, 0, backbone=EmbeddingOnly())


def test_finetune_names_the_fix_when_the_backbone_rejects_the_crop_size(colour_parts):
    with pytest.raises(PluginError, match="image_size"):
        make_head("finetune", **{**FAST, "image_size": 24}).fit(
            colour_parts["val"], colour_parts["val"], 2, 0, backbone=TinyViTBackbone())


def test_trainable_tail_finds_vit_blocks_and_resnet_layers_inside_wrappers():
    vit = TinyViTBackbone().model
    assert trainable_tail(PooledFeatures(vit), 2) == [vit.blocks[2], vit.blocks[3], vit.norm]
    resnet = timm.create_model("resnet18", pretrained=False, num_classes=0)
    assert trainable_tail(PooledFeatures(resnet), 2) == [resnet.layer3, resnet.layer4]


def test_minority_sampler_fills_about_the_requested_share_of_each_batch():
    y = np.array([0] * 90 + [1] * 10)
    drawn = list(minority_sampler(y, minority=1, fraction=0.45, generator=torch.Generator().manual_seed(0)))
    drawn += list(minority_sampler(y, minority=1, fraction=0.45, generator=torch.Generator().manual_seed(1)))
    assert 0.35 < (y[drawn] == 1).mean() < 0.55  # 10 % without the sampler
