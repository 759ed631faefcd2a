"""The image side of a transformers ``CLIPModel`` as a torch module (``get_image_features``).

Apart from :mod:`.hf_clip` so that registering the backbone does not import torch; the backbone names
this module in ``code_modules``, so its source is part of the backbone's identity.
"""
from __future__ import annotations

import torch


def image_features(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """``get_image_features``: a tensor in transformers 4, an output whose ``pooler_output`` it is in 5."""
    out = model.get_image_features(pixel_values=pixels)
    return out if torch.is_tensor(out) else out.pooler_output


class ImageEncoder(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return image_features(self.model, pixels)
