"""What vision-language (CLIP-style) backbones share: an image tower seen as a timm-like model, text
embedding in batches, and the content digests of a model folder.

The image side is a :class:`~skinbench.torch_backbone.TorchBackbone` like any other (typed params,
on-device preprocessing, TTA, DataLoader workers, the fine-tuning head's ``torch_module``); its
embedding is the model's own projected image embedding (CLIP's ``encode_image``), so the text
embeddings of :meth:`VisionLanguageBackbone.embed_text` live in the same space.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from skinbench.hashing import file_digest
from skinbench.torch_backbone import TorchBackbone

if TYPE_CHECKING:
    import torch

TEXT_BATCH = 64
"""Texts per forward pass: prompt ensembles are a few hundred short texts at most."""


class VisionLanguageBackbone(TorchBackbone):
    """Base of CLIP-style backbones; subclasses load the model and say how it tokenizes and encodes text."""

    transient = ("_model", "_text")

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self._text = None
        self._text_memo: dict[str, np.ndarray] = {}

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
