"""Hub weights: served from the local Hugging Face cache with no network, refused in seconds otherwise.

The cache is a real one in huggingface_hub's on-disk layout (``models--org--name/refs`` and
``snapshots/<commit>/``), built in a temporary folder; the hub itself is never contacted.
"""
from __future__ import annotations

import shutil

import huggingface_hub.constants
import numpy as np
import pytest
import torch

from backbone_fixtures import SMALL, tiny_timm_weights, tolerance, write_images
from skinbench.api import ConfigError
from skinbench.hashing import file_digest
from skinbench.images import load_rgb
from skinbench.plugins.backbones.timm_models import TimmBackbone

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def cache_file(cache, repo: str, filename: str, source) -> None:
    snapshot = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    shutil.copy(source, snapshot / filename)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(COMMIT)


def test_cached_hub_weights_load_offline_with_their_commit_and_hash(hub_cache, tmp_path):
    path, model = tiny_timm_weights(tmp_path / "w")
    cache_file(hub_cache, "org/tiny-vit", "model.safetensors", path)
    backbone = TimmBackbone(model="test_vit", weights="hf-hub:org/tiny-vit", **SMALL)
    assert backbone.identity.artefacts["weights"] == {"hub": "org/tiny-vit", "revision": COMMIT,
                                                      "file": "model.safetensors", "sha256": file_digest(path)}
    images = write_images(tmp_path / "img", 2)
    with torch.no_grad():
        expected = model(torch.stack([backbone.transform()(load_rgb(p)) for p in images])).numpy()
    np.testing.assert_allclose(backbone.embed_paths(images), expected, **tolerance(backbone))


def test_offline_and_uncached_is_a_config_error_without_a_network_call(hub_cache, connections):
    with pytest.raises(ConfigError, match=r"backbone 'timm' model 'resnet18': 'timm/resnet18\..*' \(model.safetensors "
                                          r"or pytorch_model.bin\) is not in the Hugging Face cache .*HF_HUB_OFFLINE "
                                          r"is set.*'weights: /path/to/model.safetensors'"):
        TimmBackbone(model="resnet18").identity.record()
    assert connections == []


def test_an_unreachable_hub_is_a_config_error_after_one_attempt(hub_cache, monkeypatch, connections):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused
    with pytest.raises(ConfigError, match=r"backbone 'timm' model 'resnet18': .* and the hub \(http://127.0.0.1:9\) "
                                          r"is unreachable"):
        TimmBackbone(model="resnet18").identity.record()
    assert {address[1] for address in connections} == {9} and len(connections) == 1, connections  # no retry
