"""The timm backbone: local weights, preprocessing, TTA, pooling, cache identity.

Embeddings are compared with timm run directly on the backbone's own preprocessing (whose
equality with PIL is tested in test_backbone_preprocess.py), within tolerances set by the
device and precision in use (``backbone_fixtures.tolerance``), so the file passes on CUDA too.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backbone_fixtures import SMALL, tiny_timm_weights, tolerance, write_images
from skinbench.api import ConfigError, DataError, TrainableBackbone
from skinbench.record.identity import embedding_key as key
from skinbench.images import load_rgb
from skinbench.plugins.backbones.timm_models import TimmBackbone


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_timm_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("images"), 5)


def reference(model, backbone, paths):
    """What timm itself computes, in fp32 on the CPU, on the backbone's preprocessed images."""
    with torch.no_grad():
        return model(torch.stack([backbone.transform()(load_rgb(p)) for p in paths])).numpy()


def test_local_safetensors_weights_are_loaded(weights, images):
    path, model = weights
    backbone = TimmBackbone(model="test_vit", weights=str(path), **SMALL)
    np.testing.assert_allclose(backbone.embed([load_rgb(p) for p in images]), reference(model, backbone, images),
                               **tolerance(backbone))


def test_torch_file_in_a_folder_is_loaded_with_its_wrapper(weights, images, tmp_path):
    path, model = weights
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pth")
    backbone = TimmBackbone(model="test_vit", weights=str(tmp_path), **SMALL)
    np.testing.assert_allclose(backbone.embed_paths(images), reference(model, backbone, images), **tolerance(backbone))
    assert backbone.identity.artefacts["weights"]["file"] == "checkpoint.pth"


def test_missing_weights_path_and_unknown_model_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        TimmBackbone(model="test_vit", weights=str(tmp_path / "nope.safetensors")).identity.record()
    with pytest.raises(ConfigError, match="unknown model 'no_such_net'"):
        TimmBackbone(model="no_such_net")


def test_random_init_is_labelled_and_seeded(images):
    backbone = TimmBackbone(model="test_vit", weights="random", **SMALL)
    assert "weights=random" in backbone.label
    again = TimmBackbone(model="test_vit", weights="random", batch_size=2, **SMALL)
    np.testing.assert_allclose(backbone.embed_paths(images), again.embed_paths(images), **tolerance(backbone))


def test_preprocessing_defaults_to_the_native_config_and_accepts_overrides():
    native = TimmBackbone(model="dinov2-small", weights="random").preprocessing()
    assert (native["crop"], native["resize"], native["interpolation"]) == (518, 518, "bicubic")
    thesis = TimmBackbone(model="dinov2-small", weights="random", resize=384, crop=224).data_config()
    assert thesis["input_size"] == (3, 224, 224) and thesis["crop_pct"] == pytest.approx(224 / 384)


def test_dinov2_preset_runs_below_its_native_size(images):
    backbone = TimmBackbone(model="dinov2-small", weights="random", resize=32, crop=28)
    assert backbone.embed_paths(images[:2]).shape == (2, 384)


def test_tta_averages_ten_views(weights, images):
    path, model = weights
    backbone = TimmBackbone(model="test_vit", weights=str(path), tta=True, **SMALL)
    views = backbone.transform()(load_rgb(images[0]))
    assert views.shape == (10, 3, 32, 32)
    torch.testing.assert_close(views[5], views[0].flip(-1))
    with torch.no_grad():
        expected = model(views).mean(0).numpy()
    np.testing.assert_allclose(backbone.embed_paths(images[:1])[0], expected, **tolerance(backbone))
    plain = TimmBackbone(model="test_vit", weights=str(path), **SMALL)
    assert key(backbone) != key(plain)


def test_pooling_is_a_parameter_and_part_of_the_key(weights, images):
    path, _ = weights
    cls = TimmBackbone(model="test_vit", weights=str(path), pool="cls", **SMALL)
    mean = TimmBackbone(model="test_vit", weights=str(path), pool="mean", **SMALL)
    assert not np.allclose(cls.embed_paths(images), mean.embed_paths(images))
    assert key(cls) != key(mean)
    with pytest.raises(ConfigError, match=r"backbone 'timm': 'pool': input should be 'cls', .*got 'median'"):
        TimmBackbone(model="test_vit", pool="median")


def test_runtime_parameters_do_not_change_the_key(weights, tmp_path):
    path, _ = weights
    base = TimmBackbone(model="test_vit", weights=str(path), device="cpu", **SMALL)
    # on the CPU precision auto is fp32: the same precision in use (CUDA's bf16 would be another key)
    runtime = TimmBackbone(model="test_vit", weights=str(path), batch_size=3, num_workers=2, device="cpu",
                           precision="fp32", **SMALL)
    assert key(base) == key(runtime)
    other_crop = TimmBackbone(model="test_vit", weights=str(path), crop=28, resize=36)
    other_norm = TimmBackbone(model="test_vit", weights=str(path), std=[0.5, 0.5, 0.5], **SMALL)
    other_file, _ = tiny_timm_weights(tmp_path, seed=2)
    other_weights = TimmBackbone(model="test_vit", weights=str(other_file), **SMALL)
    keys = {key(base), key(other_crop), key(other_norm), key(other_weights)}
    assert len(keys) == 4


def test_workers_decode_in_parallel_with_equal_results(weights, images):
    path, _ = weights
    serial = TimmBackbone(model="test_vit", weights=str(path), batch_size=2, **SMALL)
    parallel = TimmBackbone(model="test_vit", weights=str(path), batch_size=2, num_workers=2, **SMALL)
    np.testing.assert_allclose(parallel.embed_paths(images), serial.embed([load_rgb(p) for p in images]), rtol=0,
                               atol=1e-6 if parallel.identity.artefacts["device_type"] == "cpu" else 1e-3)


def test_unreadable_image_in_a_worker_names_the_file(weights, images, tmp_path):
    path, _ = weights
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    backbone = TimmBackbone(model="test_vit", weights=str(path), num_workers=1, **SMALL)
    with pytest.raises(DataError, match="broken.png"):
        backbone.embed_paths([images[0], str(broken)])


def test_torch_module_is_a_trainable_copy_with_the_same_pooling(weights, images):
    path, _ = weights
    backbone = TimmBackbone(model="test_vit", weights=str(path), **SMALL)
    assert isinstance(backbone, TrainableBackbone) and backbone.feature_dim == 64
    before = backbone.embed_paths(images)
    module = backbone.torch_module()
    batch = torch.stack([backbone.transform()(load_rgb(p)) for p in images])
    with torch.no_grad():
        np.testing.assert_allclose(module.eval()(batch).numpy(), before, **tolerance(backbone))
        for p in module.parameters():
            p.add_(1.0)
    assert all(p.requires_grad for p in module.parameters())
    np.testing.assert_array_equal(backbone.embed_paths(images), before)


def test_unknown_device_is_an_error_when_the_suite_is_read():
    with pytest.raises(ConfigError, match="device 'tpu' is unknown; use one of auto, cpu, cuda, mps"):
        TimmBackbone(model="test_vit", weights="random", device="tpu")
