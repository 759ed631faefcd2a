"""Vision-language backbones on tiny random-init models built here: open_clip and transformers CLIP.

The embeddings must be exactly what the libraries compute (``encode_image`` / ``encode_text``,
``get_image_features`` / ``get_text_features``), the identity must cover both towers, the tokenizer and
the preprocessing, and missing hub weights must fail in the preflight without a network call.
"""
from __future__ import annotations

import json
import shutil

import huggingface_hub.constants
import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from backbone_fixtures import write_images
from skinbench.api import ConfigError, TextBackbone
from skinbench.cli import main
from skinbench.images import load_rgb
from skinbench.plugins.backbones.hf_clip import HfClipBackbone
from skinbench.plugins.backbones.open_clip_model import OpenClipBackbone
from skinbench.testing import build_tiny_hf_clip, build_tiny_open_clip

TEXTS = ["a clinical photograph of dry skin.", "oily skin", "a dermoscopic image of melanoma."]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def open_clip_folder(tmp_path_factory):
    return build_tiny_open_clip(tmp_path_factory.mktemp("open-clip"))


@pytest.fixture(scope="module")
def hf_clip_folder(tmp_path_factory):
    return build_tiny_hf_clip(tmp_path_factory.mktemp("hf-clip"))


def test_open_clip_embeddings_are_encode_image_and_encode_text(open_clip_folder, tmp_path):
    backbone = OpenClipBackbone(model=str(open_clip_folder))
    model = open_clip.create_model(f"local-dir:{open_clip_folder}").eval()
    tokenizer = open_clip.get_tokenizer(f"local-dir:{open_clip_folder}")
    images = write_images(tmp_path, 3)
    batch = torch.stack([backbone.transform()(load_rgb(p)) for p in images])
    with torch.no_grad():
        np.testing.assert_array_equal(backbone.features([batch]), model.encode_image(batch).numpy())
        np.testing.assert_array_equal(backbone.embed_text(TEXTS), model.encode_text(tokenizer(TEXTS)).numpy())
    assert backbone.logit_scale() == pytest.approx(float(model.logit_scale.detach().exp()))
    assert isinstance(backbone, TextBackbone)


def test_open_clip_uses_the_models_own_preprocessing(open_clip_folder, tmp_path):
    """Through skinbench's batched preprocessing, images embed as through open_clip's own eval transform
    (pixels differ by at most 2 of 255 levels: skinbench.preprocess)."""
    backbone = OpenClipBackbone(model=str(open_clip_folder))
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{open_clip_folder}")
    images = write_images(tmp_path, 3)
    with torch.no_grad():
        theirs = model.eval().encode_image(torch.stack([preprocess(Image.open(p).convert("RGB")) for p in images]))
    np.testing.assert_allclose(backbone.embed_paths(images), theirs.numpy(), atol=0.05, rtol=0)
    assert backbone.preprocessing()["interpolation"] == "bicubic"


def test_hf_clip_embeddings_are_get_image_and_text_features(hf_clip_folder, tmp_path):
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    backbone = HfClipBackbone(model=str(hf_clip_folder))
    model = CLIPModel.from_pretrained(str(hf_clip_folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(hf_clip_folder))
    processor = CLIPImageProcessor.from_pretrained(str(hf_clip_folder))
    images = write_images(tmp_path, 3)
    with torch.no_grad():
        pixels = processor(images=[Image.open(p).convert("RGB") for p in images], return_tensors="pt")["pixel_values"]
        image_out = model.get_image_features(pixel_values=pixels)
        tokens = tokenizer(TEXTS, padding=True, return_tensors="pt")
        text_out = model.get_text_features(**tokens)
    as_tensor = (lambda out: out if torch.is_tensor(out) else out.pooler_output)
    np.testing.assert_allclose(backbone.embed_paths(images), as_tensor(image_out).numpy(), atol=0.05, rtol=0)
    np.testing.assert_allclose(backbone.embed_text(TEXTS), as_tensor(text_out).numpy(), atol=1e-5, rtol=0)
    assert backbone.logit_scale() == pytest.approx(float(model.logit_scale.detach().exp()))


@pytest.mark.parametrize("edit", ["weights", "tokenizer", "preprocessing"])
def test_identity_covers_both_towers_the_tokenizer_and_the_preprocessing(hf_clip_folder, tmp_path, edit):
    folder = shutil.copytree(hf_clip_folder, tmp_path / "copy")
    before = HfClipBackbone(model=str(folder)).identity.digest
    if edit == "weights":
        from safetensors.torch import load_file, save_file

        tensors = load_file(folder / "model.safetensors")
        name = next(k for k in tensors if "text_model" in k and k.endswith("weight"))
        tensors[name] = tensors[name] + 1e-3  # the text tower only: image embeddings would not show it
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    elif edit == "tokenizer":
        config = json.loads((folder / "tokenizer_config.json").read_text())
        (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 40}))
    else:
        config = json.loads((folder / "preprocessor_config.json").read_text())
        (folder / "preprocessor_config.json").write_text(json.dumps({**config, "image_mean": [0.5, 0.5, 0.5]}))
    assert HfClipBackbone(model=str(folder)).identity.digest != before


def test_open_clip_identity_changes_with_the_preprocess_config(open_clip_folder, tmp_path):
    folder = shutil.copytree(open_clip_folder, tmp_path / "copy")
    before = OpenClipBackbone(model=str(folder)).identity.digest
    config = json.loads((folder / "open_clip_config.json").read_text())
    config["preprocess_cfg"]["interpolation"] = "bilinear"
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    after = OpenClipBackbone(model=str(folder))
    assert after.preprocessing()["interpolation"] == "bilinear"
    assert after.identity.digest != before


def test_an_architecture_with_a_checkpoint_file_loads_it(open_clip_folder, tmp_path):
    """open_clip's built-in ViT-B-32 is too big for a unit test, so the tiny config is registered as an architecture."""
    config = json.loads((open_clip_folder / "open_clip_config.json").read_text())["model_cfg"]
    (tmp_path / "tiny-clip.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "tiny-clip.json")
    checkpoint = open_clip_folder / "open_clip_model.safetensors"
    from_file = OpenClipBackbone(model="tiny-clip", weights=str(checkpoint))
    from_folder = OpenClipBackbone(model=str(open_clip_folder))
    np.testing.assert_array_equal(from_file.embed_text(TEXTS), from_folder.embed_text(TEXTS))
    assert from_file.identity.artefacts["weights"]["file"] == checkpoint.name
    with pytest.raises(ConfigError, match="architecture 'tiny-clip' needs 'weights'"):
        OpenClipBackbone(model="tiny-clip")


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_a_cached_hub_repo_loads_offline(open_clip_folder, offline_hub):
    snapshot = offline_hub / "models--org--tiny-clip" / "snapshots" / COMMIT
    shutil.copytree(open_clip_folder, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(COMMIT)
    backbone = OpenClipBackbone(model="hf-hub:org/tiny-clip")
    assert backbone.identity.artefacts["weights"]["source"] == "hf-hub:org/tiny-clip"
    np.testing.assert_array_equal(backbone.embed_text(TEXTS), OpenClipBackbone(model=str(open_clip_folder))
                                  .embed_text(TEXTS))


@pytest.mark.parametrize("kind, preset", [("open-clip", "dermlip"), ("open-clip", "biomedclip"), ("hf-clip", "monet")])
def test_uncached_presets_fail_in_validate_without_a_network_call(offline_hub, tmp_path, connections, capsys,
                                                                  kind, preset):
    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps({"name": "offline", "datasets": [{"name": "demo", "params": {"n_patients": 16}}],
                                 "backbones": [{"name": kind, "params": {"model": preset}}],
                                 "heads": [{"name": "zero-shot"}]}))
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert f"backbone '{kind}' model '{preset}'" in err and "HF_HUB_OFFLINE is set" in err
    assert connections == []


def test_presets_carry_their_licence_citation_and_pretraining_data():
    for backbone in (OpenClipBackbone(model="dermlip"), OpenClipBackbone(model="biomedclip"),
                     HfClipBackbone(model="monet")):
        assert backbone.meta.citation and backbone.meta.license and backbone.meta.pretraining_data
    assert "Derm1M" in OpenClipBackbone(model="dermlip").meta.pretraining_data[0]
    assert OpenClipBackbone.meta.pretraining_data == []  # the class itself claims no data
