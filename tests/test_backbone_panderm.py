"""PanDerm: the explicit key remap, checked strictly on a tiny ViT saved under PanDerm's key names."""
from __future__ import annotations

import re

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from backbone_fixtures import write_images
from skinbench.api import ConfigError
from skinbench.plugins.backbones.panderm import VIT_KWARGS, PanDerm, load_panderm


def tiny_vit(seed: int) -> VisionTransformer:
    torch.manual_seed(seed)
    return VisionTransformer(img_size=32, patch_size=16, embed_dim=32, depth=2, num_heads=2, **VIT_KWARGS).eval()


def as_panderm_checkpoint(model: VisionTransformer) -> dict:
    """The model's weights under PanDerm's names: encoder. prefix, q_bias/v_bias, gamma_1/gamma_2,
    plus the decoder and teacher entries a pretraining checkpoint carries."""
    out = {}
    for key, value in model.state_dict().items():
        if key.endswith("attn.qkv.bias"):
            q, _, v = value.chunk(3)
            prefix = key.removesuffix("qkv.bias")
            out[f"encoder.{prefix}q_bias"], out[f"encoder.{prefix}v_bias"] = q.clone(), v.clone()
        else:
            out["encoder." + re.sub(r"ls(\d)\.gamma$", r"gamma_\1", key)] = value.clone()
    out["decoder.blocks.0.mlp.fc1.weight"] = torch.zeros(2, 2)
    out["teacher.norm.weight"] = torch.ones(2)
    return {"model": out}


@pytest.fixture
def source():
    model = tiny_vit(seed=1)
    with torch.no_grad():  # PanDerm has no k bias: make the source model's zero too, the rest random
        for block in model.blocks:
            bias = block.attn.qkv.bias
            bias.copy_(torch.randn_like(bias))
            bias[32:64] = 0
            block.ls1.gamma.copy_(torch.rand(32))
    return model


def test_remap_loads_strictly_and_reproduces_outputs(source, tmp_path):
    path = tmp_path / "panderm_tiny.pth"
    checkpoint = as_panderm_checkpoint(source)
    assert any(k.endswith("attn.q_bias") for k in checkpoint["model"]) and any("gamma_1" in k for k in checkpoint["model"])
    torch.save(checkpoint, path)
    target = tiny_vit(seed=2)
    load_panderm(target, path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(target.forward_head(target.forward_features(x), pre_logits=True), source(x))


def test_a_missing_key_is_named(source, tmp_path):
    checkpoint = as_panderm_checkpoint(source)
    del checkpoint["model"]["encoder.pos_embed"]
    torch.save(checkpoint, tmp_path / "cut.pth")
    with pytest.raises(ConfigError, match="missing keys: \\['pos_embed'\\]"):
        load_panderm(tiny_vit(seed=2), tmp_path / "cut.pth")


def test_plugin_uses_panderm_normalisation_and_needs_weights(tmp_path):
    backbone = PanDerm()
    config = backbone.data_config()
    assert config["std"] == (0.228, 0.224, 0.225) and config["input_size"] == (3, 224, 224)
    assert backbone.preprocessing()["resize"] == 256 and config["interpolation"] == "bilinear"
    with pytest.raises(ConfigError, match="needs 'weights'"):
        backbone.embed_paths(write_images(tmp_path, 1))
