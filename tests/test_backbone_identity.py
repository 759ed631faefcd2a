"""One identity per backbone: weights content, code, precision in use and typed parameters.

The embedding cache is keyed by ``embedding_key(backbone)``, the backbone's whole identity, so
anything that can change an embedding must change the identity, and nothing else may.
"""
from __future__ import annotations

import importlib.util
import sys
import textwrap

import numpy as np
import pytest

from backbone_fixtures import SMALL, tiny_timm_weights, write_images
from skinbench.api import ConfigError
from skinbench.execution.cache import EmbeddingCache
from skinbench.execution.embedding import embed_paths
from skinbench.record.identity import embedding_key
from skinbench.plugins.backbones.efficientnet_lite0 import EfficientNetLite0
from skinbench.plugins.backbones.handcrafted import HandcraftedBackbone
from skinbench.plugins.backbones.timm_models import TimmBackbone

PLUGIN_SOURCE = '''
import numpy as np
from skinbench.api import Backbone, PluginParams


class Edited(Backbone):
    name = "edited"

    class Params(PluginParams):
        scale: float = 1.0

    def embed(self, images):
        return np.stack([np.asarray(im, np.float32).mean((0, 1)) * {factor} for im in images])
'''


def load_plugin(folder, factor: float):
    """The same plugin (module name, class, name, version) with the body of ``embed`` edited."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "edited_backbone.py"
    path.write_text(textwrap.dedent(PLUGIN_SOURCE.format(factor=factor)))
    sys.modules.pop("edited_backbone", None)
    spec = importlib.util.spec_from_file_location("edited_backbone", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["edited_backbone"] = module
    spec.loader.exec_module(module)
    return module.Edited()


def test_replacing_the_weights_file_at_the_same_path_gives_a_new_identity(tmp_path):
    path, _ = tiny_timm_weights(tmp_path, seed=1)
    before = TimmBackbone(model="test_vit", weights=str(path), **SMALL)
    key_before = embedding_key(before)  # resolved now, before the file changes
    other, _ = tiny_timm_weights(tmp_path / "other", seed=2)
    path.write_bytes(other.read_bytes())
    after = TimmBackbone(model="test_vit", weights=str(path), **SMALL)
    assert after.identity.params == before.identity.params
    assert after.identity.artefacts["weights"]["sha256"] != before.identity.artefacts["weights"]["sha256"]
    assert embedding_key(after) != key_before


def test_a_plugin_whose_code_changed_is_re_embedded(tmp_path):
    images = write_images(tmp_path / "img", 3)
    cache = EmbeddingCache(tmp_path / "cache")
    old = load_plugin(tmp_path / "v1", factor=1.0)
    first = embed_paths(old, images, cache=cache, progress=False)
    new = load_plugin(tmp_path / "v2", factor=0.0)  # embed now returns zeros
    assert (new.identity.name, new.identity.version, new.identity.params) == \
           (old.identity.name, old.identity.version, old.identity.params)
    assert new.identity.code != old.identity.code and embedding_key(new) != embedding_key(old)
    second = embed_paths(new, images, cache=cache, progress=False)
    assert first.any() and not second.any()  # computed afresh, not served from the old entries


def test_the_precision_in_use_is_in_the_key_and_runtime_parameters_are_not(tmp_path):
    path, _ = tiny_timm_weights(tmp_path)
    base = TimmBackbone(model="test_vit", weights=str(path), precision="fp32", device="cpu", **SMALL)
    bf16 = TimmBackbone(model="test_vit", weights=str(path), precision="bf16", device="cpu", **SMALL)
    assert bf16.identity.artefacts["precision"] == "bfloat16" and base.identity.artefacts["precision"] == "float32"
    assert embedding_key(bf16) != embedding_key(base)
    images = write_images(tmp_path / "img", 2)
    assert np.abs(bf16.embed_paths(images) - base.embed_paths(images)).max() > 0  # they do differ
    runtime = TimmBackbone(model="test_vit", weights=str(path), precision="auto", batch_size=3, num_workers=1,
                           device="cpu", **SMALL)  # auto is fp32 on the CPU
    assert embedding_key(runtime) == embedding_key(base)


@pytest.mark.parametrize("params, message", [
    ({"mean": [0.5, 0.5]}, r"'mean': list should have at least 3 items"),
    ({"std": [0.5, 0.0, 0.5]}, r"'std\[1\]': input should be greater than 0"),
    ({"interpolation": "lanczos"}, r"'interpolation': input should be 'bilinear', 'bicubic' or 'nearest'"),
    ({"num_workers": -1}, r"'num_workers': input should be greater than or equal to 0"),
    ({"precision": "fp8"}, r"'precision': input should be 'auto', 'fp32', 'fp16' or 'bf16'"),
    ({"batch_size": "32"}, r"'batch_size': input should be a valid integer, got '32'"),
])
def test_torch_backbone_parameters_are_typed(params, message):
    with pytest.raises(ConfigError, match=r"backbone 'efficientnet-lite0': " + message):
        EfficientNetLite0(**params)


def test_gpu_jpeg_decoding_without_cuda_is_refused_naming_the_backbone():
    with pytest.raises(ConfigError, match="backbone 'efficientnet-lite0': jpeg_decoder 'nvjpeg' needs a CUDA device"):
        EfficientNetLite0(device="cpu", jpeg_decoder="nvjpeg").identity.record()


def test_handcrafted_records_the_libraries_its_features_come_from():
    artefacts = HandcraftedBackbone().identity.artefacts
    assert set(artefacts) == {"scikit-image", "scipy"}
    with pytest.raises(ConfigError, match=r"'size': input should be greater than or equal to 8"):
        HandcraftedBackbone(size=4)
