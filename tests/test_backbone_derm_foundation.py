"""Derm Foundation without TensorFlow installed: clear errors that say what to install or set."""
from __future__ import annotations

import importlib.util

import pytest
from PIL import Image

from skinbench.api import ConfigError
from skinbench.plugins.backbones.derm_foundation import SIGNATURE_FILES, DermFoundation


def test_model_dir_must_hold_a_savedmodel(tmp_path):
    with pytest.raises(ConfigError, match="missing saved_model.pb"):
        DermFoundation(model_dir=str(tmp_path)).identity.record()


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed")
def test_without_tensorflow_the_error_names_the_extra(tmp_path):
    for name in SIGNATURE_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    backbone = DermFoundation(model_dir=str(tmp_path))
    assert set(backbone.identity.artefacts["savedmodel"]) == set(SIGNATURE_FILES)
    with pytest.raises(ConfigError, match=r"pip install 'skinbench\[derm-foundation\]'"):
        backbone.embed([Image.new("RGB", (8, 8))])
