"""The torch modules of the fine-tuning head: its training images and the StrongHead classifier.

Apart from :mod:`.finetune` so that registering the head does not import torch; the head names this
module in ``code_modules``, so its source is part of the head's identity.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from .finetune import ImageViews


class TrainImages(torch.utils.data.Dataset):
    def __init__(self, images: list, y: np.ndarray, views: ImageViews, jitter_p: np.ndarray):
        self.images, self.y, self.views, self.jitter_p = images, y, views, jitter_p

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        label = int(self.y[i])
        return self.views.training(self.images[i], float(self.jitter_p[label])), label


class ResidualMLPBlock(nn.Module):
    """Pre-norm residual MLP block: x + Dropout(Linear(GELU(Linear(LayerNorm(x)))))."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.mlp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(),
                                 nn.Linear(width, width), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(x)


class CosineClassifier(nn.Module):
    """Logits s * cos(feature, class weight); s is learnable but bounded to ``scale_range``
    (sigmoid reparametrisation), which keeps the softmax neither flat nor saturated."""

    def __init__(self, width: int, n_classes: int, scale_range: tuple[float, float]):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, width))
        nn.init.xavier_uniform_(self.weight)
        self.scale_logit = nn.Parameter(torch.zeros(()))
        self.low, self.high = scale_range

    def scale(self) -> torch.Tensor:
        return self.low + (self.high - self.low) * torch.sigmoid(self.scale_logit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale() * F.normalize(x, dim=-1) @ F.normalize(self.weight, dim=-1).t()


class StrongHead(nn.Module):
    """LayerNorm -> Linear(width) -> GELU -> Dropout -> residual MLP blocks -> cosine classifier."""

    def __init__(self, in_dim: int, n_classes: int, width: int, dropout: float, n_blocks: int,
                 scale_range: tuple[float, float]):
        super().__init__()
        self.stem = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, width), nn.GELU(), nn.Dropout(dropout))
        self.blocks = nn.Sequential(*[ResidualMLPBlock(width, dropout) for _ in range(n_blocks)])
        self.classifier = CosineClassifier(width, n_classes, scale_range)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.blocks(self.stem(features)))
