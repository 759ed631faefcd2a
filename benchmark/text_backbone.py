"""What vision-language (CLIP-style) backbones share: an image tower seen as a timm-like model, text
embedding in batches, and the content digests of a model folder.

The image side is a :class:`~skinbench.torch_backbone.TorchBackbone` like any other (typed params,
on-device preprocessing, TTA, DataLoader workers, the fine-tuning head's ``torch_module``); its
embedding is the model's own projected image embedding (CLIP's ``encode_image``), so the text
embeddings of :meth:`VisionLanguageBackbone.embed_text` live in the same space.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable

import numpy as np

from skinbench.api import PluginMeta
from skinbench.hashing import file_digest
from skinbench.torch_backbone import TorchBackbone

if TYPE_CHECKING:
    import torch

TEXT_BATCH = 64
"""Texts per forward pass: prompt ensembles are a few hundred short texts at most."""
LOCAL_HINT = ("Download the repo where the hub is reachable (huggingface_hub.snapshot_download) and set 'model' "
              "to its folder")
"""What an offline user is told when a hub model is not on disk."""


@dataclass(frozen=True)
class Preset:
    """A named model: where it loads from, and its licence, citation and pretraining data."""

    model: str
    meta: PluginMeta


class VisionLanguageBackbone(TorchBackbone):
    """Base of CLIP-style backbones; subclasses load the model and say how it tokenizes and encodes text."""

    transient = ("_model", "_text")
    presets: ClassVar[dict[str, Preset]] = {}
    """Names a user may give as ``model``; an instance of a preset carries the preset's ``meta``."""

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self._text = None
        self._text_memo: dict[str, np.ndarray] = {}
        preset = self.presets.get(self.config["model"])
        if preset is not None:
            self.meta = preset.meta  # the preset's licence, citation and pretraining data, for this instance
        self.source = preset.model if preset else self.config["model"]

    def logit_scale(self) -> float:
        """The loaded model's learned ``exp(logit_scale)``."""
        self.text_encoder()
        return float(self._logit_scale)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 text embeddings, unnormalised, each text encoded once per process."""
        import torch

        todo = list(dict.fromkeys(t for t in texts if t not in self._text_memo))
        if todo:
            encode = self.text_encoder()
            device = self.device
            with torch.inference_mode():
                for start in range(0, len(todo), TEXT_BATCH):
                    chunk = todo[start:start + TEXT_BATCH]
                    vectors = encode(chunk, device).float().cpu().numpy()
                    self._text_memo.update(zip(chunk, vectors))
        return np.stack([self._text_memo[t] for t in texts]).astype(np.float32, copy=False) if texts \
            else np.zeros((0, self.feature_dim), np.float32)

    def text_encoder(self) -> Callable[[list[str], torch.device], torch.Tensor]:
        """texts, device -> embeddings; built once from the loaded model."""
        if self._text is None:
            self.pooled_model()  # loads the model, and with it the text tower
            self._text = self.build_text_encoder()
        return self._text

    def build_text_encoder(self) -> Callable[[list[str], torch.device], torch.Tensor]:
        """The text side of the loaded model; sets ``self._logit_scale``."""
        raise NotImplementedError


def folder_identity(folder: Path, names: Iterable[str]) -> dict[str, str]:
    """sha256 of every file of ``names`` the folder has: config, weights and tokenizer files together
    identify both towers, the tokenizer and the preprocessing."""
    return {name: file_digest(folder / name) for name in sorted(names) if (folder / name).is_file()}
