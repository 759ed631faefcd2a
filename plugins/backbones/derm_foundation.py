"""Google's Derm Foundation (BiT ResNet-101x3, 6144-d) from a local TensorFlow SavedModel.

The model is gated on Hugging Face (``google/derm-foundation``): the user accepts the terms,
downloads the repo (e.g. ``huggingface_hub.snapshot_download``) and points ``model_dir`` at it.
TensorFlow is an optional extra (``pip install 'skinbench[derm-foundation]'``), imported only
when this backbone is used. The serving signature takes serialized ``tf.train.Example``s with
PNG bytes under ``image/encoded`` and resizes inside the graph, so images are passed whole.
"""
from __future__ import annotations

import importlib.metadata
import io
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from PIL import Image
from pydantic import Field
from skinbench.sdk import Backbone, ConfigError, file_digest, hookimpl, PluginParams

EMBEDDING_DIM = 6144
SIGNATURE_FILES = ("saved_model.pb", "variables/variables.index")
"""Hashed for the cache key; the variables index records a checksum of every weight shard."""


def tensorflow():
    try:
        import tensorflow as tf
    except ImportError:
        raise ConfigError("backbone 'derm-foundation' needs TensorFlow, which is an optional extra: "
                          "pip install 'skinbench[derm-foundation]'") from None
    return tf


def _installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class DermFoundation(Backbone):
    """Google Derm Foundation (6144-d) from a local SavedModel; needs the [derm-foundation] extra."""

    name = "derm-foundation"

    class Params(PluginParams):
        model_dir: str | None = Field(None, description="the downloaded SavedModel folder of google/derm-foundation")
        batch_size: Annotated[int, Field(ge=1)] = 16

    transient = ("_serve",)
    runtime_params = frozenset({"batch_size"})
    """The graph embeds each image on its own; batching only changes speed."""
    meta = {
        "license": "Health AI Developer Foundations terms of use (weights); Apache-2.0 (code)",
        "citation": "Rikhye et al., Closing the AI generalisation gap by adjusting for dermatology condition "
                    "distribution differences across clinical settings (2024); Google Derm Foundation model card",
        "pretraining_data": ["dermatology and natural images (Google, undisclosed)"],
    }

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self._serve = None

    def _folder(self) -> Path:
        folder = Path(self.config["model_dir"] or "").expanduser()
        missing = [name for name in SIGNATURE_FILES if not (folder / name).is_file()]
        if not self.config["model_dir"] or missing:
            raise ConfigError(
                f"backbone 'derm-foundation': 'model_dir' must be the downloaded SavedModel folder of "
                f"google/derm-foundation (got {self.config['model_dir']!r}; missing {', '.join(missing)})"
            )
        return folder

    def artefacts(self) -> dict[str, Any]:
        """The SavedModel's graph and weight-index digests, and the TensorFlow version that runs them."""
        folder = self._folder()
        return {"savedmodel": {name: file_digest(folder / name) for name in SIGNATURE_FILES},
                "tensorflow": _installed_version("tensorflow")}

    def embed(self, images: list[Image.Image]) -> np.ndarray:
        tf = tensorflow()
        if self._serve is None:
            self._serve = tf.saved_model.load(str(self._folder())).signatures["serving_default"]
        size = int(self.config["batch_size"])
        out = [self._embed_batch(tf, images[i:i + size]) for i in range(0, len(images), size)]
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING_DIM), np.float32)

    def _embed_batch(self, tf, images: list[Image.Image]) -> np.ndarray:
        examples = [
            tf.train.Example(features=tf.train.Features(feature={
                "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png_bytes(im)])),
            })).SerializeToString()
            for im in images
        ]
        output = self._serve(inputs=tf.constant(examples))["embedding"].numpy()
        return output.reshape(len(images), -1).astype(np.float32)


@hookimpl
def skinbench_backbones():
    return [DermFoundation]
