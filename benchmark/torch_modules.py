"""The torch modules and data of torch backbones: pooled features of a timm-like model, CLIP image towers,
image files for DataLoader workers.

Apart from :mod:`skinbench.torch_backbone` and :mod:`skinbench.text_backbone` so that importing (registering) a backbone does not import
torch; the backbones declare this module in ``code_modules``, so its source is part of their identity.
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

from skinbench.images import jpeg_bytes, load_uint8
from skinbench.preprocess import Preprocess


class PooledFeatures(torch.nn.Module):
    """A timm model seen as images -> pooled pre-logit features (B, D)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


class ImageFiles(Dataset):
    """Image files for DataLoader workers: decoded to (3, H, W) uint8 tensors, preprocessed there when
    ``transform`` is given (CPU backbones), or left as JPEG bytes when the GPU decodes JPEGs."""

    def __init__(self, paths: list[str], transform: Preprocess | None, jpeg_as_bytes: bool):
        self.paths, self.transform, self.jpeg_as_bytes = paths, transform, jpeg_as_bytes

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        path = self.paths[index]
        encoded = jpeg_bytes(path) if self.jpeg_as_bytes else None
        if encoded is not None:
            return encoded
        image = load_uint8(path)
        return self.transform(image) if self.transform is not None else image


def stack_when_possible(items: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
    """DataLoader collate: one tensor when every item is an image of the same shape (one host-to-device
    copy), else the list (images of different sizes, or JPEG bytes)."""
    if items[0].ndim >= 3 and all(item.shape == items[0].shape for item in items):
        return torch.stack(items)
    return items


class ImageTower(torch.nn.Module):
    """An image encoder (images -> projected embeddings) with the two methods and the width that
    :class:`PooledFeatures` and the fine-tuning head expect of a timm model."""

    def __init__(self, encode: torch.nn.Module, dim: int):
        super().__init__()
        self.encode = encode
        self.num_features = int(dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:
        return features
