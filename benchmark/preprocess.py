"""Resize, crop and normalise uint8 image tensors in batches, on the device the model runs on.

The result equals the PIL pipeline every torch backbone used before (timm's eval transform:
PIL resize of the shorter side, centre crop, ``to_tensor``, normalise) within a documented
tolerance, measured in ``tests/test_backbone_preprocess.py``:

- ``nearest``: identical (PIL's source-pixel index rule, reproduced exactly);
- ``bilinear`` / ``bicubic`` on the CPU: torchvision's native uint8 kernel, PIL's own
  algorithm; pixels differ by at most 2 of 255 levels (measured: usually 1 level, in 0-15% of
  the pixels depending on the scale factor; 2 levels in well under 1%);
- ``bilinear`` / ``bicubic`` on a GPU: :func:`separable_resize`, two antialiased float passes
  (width, then height) rounded to uint8 after each pass as PIL does; at most 2 levels as well.
  A single float pass would skip PIL's clamping between passes and differ by up to ~20 levels
  on high-contrast texture (bicubic overshoot).

From the uint8 pixels on, the arithmetic is exactly the PIL pipeline's (divide by 255,
subtract the mean, divide by the std), so normalised inputs differ by at most 2 / 255 / std.
"""
from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image
from skinbench.images import rgb_tensor

if TYPE_CHECKING:
    import torch

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
PIL_TOLERANCE_LEVELS = 2
"""Largest difference from PIL's resized pixels, in uint8 levels (bilinear and bicubic, any device)."""
TTA_VIEWS = 10
"""FiveCrop (four corners and centre) and their horizontal mirrors."""


def resized_size(height: int, width: int, shorter: int) -> tuple[int, int]:
    """(height, width) with the shorter side ``shorter`` and the aspect kept, as torchvision and PIL resize."""
    if width <= height:
        return int(shorter * height / width), shorter
    return shorter, int(shorter * width / height)


def resize_like_pil(images: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    """Resize a (B, 3, H, W) uint8 batch to ``size`` as PIL resizes each image, on the batch's device."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    if interpolation == "nearest":
        rows = _pil_nearest_index(images.shape[-2], size[0], images.device)
        cols = _pil_nearest_index(images.shape[-1], size[1], images.device)
        return images[..., rows[:, None], cols[None, :]]
    if images.device.type == "cpu":
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        return TF.resize(images, list(size), InterpolationMode(interpolation), antialias=True)
    return separable_resize(images, size, interpolation)


def separable_resize(images: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    """PIL's resampling on any device: an antialiased width pass, then a height pass, each rounded and
    clamped to uint8 as PIL stores its intermediate image."""
    import torch
    import torch.nn.functional as F

    out = images.to(torch.float32)
    for target in ((out.shape[-2], size[1]), tuple(size)):
        if tuple(out.shape[-2:]) != target:
            out = F.interpolate(out, size=target, mode=interpolation, antialias=True, align_corners=False)
            out = out.clamp_(0, 255).round_()
    return out.to(torch.uint8)


@lru_cache(maxsize=64)
def _pil_nearest_index(n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
    """Source index of each output pixel as PIL's ImagingScaleAffine computes it: the sampling
    position starts at half a step and is advanced by repeated float64 addition, then truncated."""
    steps = np.full(n_out, n_in / n_out)
    steps[0] /= 2
    index = np.minimum(np.add.accumulate(steps).astype(np.int64), n_in - 1)
    import torch

    return torch.from_numpy(index).to(device)


class Preprocess:
    """Resize the shorter side, then one centre crop or ten TTA views, as normalised float tensors.

    Equals timm's eval transform (``create_transform(**data_config)``) when ``tta`` is off, within
    the tolerance in this module's docstring. :meth:`batch` works on the tensors' device, so a
    GPU backbone preprocesses there; calling the object handles one image (PIL or tensor).
    """

    def __init__(self, resize: int, crop: int, interpolation: str, mean: Sequence[float], std: Sequence[float],
                 tta: bool):
        self.resize, self.crop, self.interpolation, self.tta = int(resize), int(crop), interpolation, bool(tta)
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        self._constants: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        """(3, crop, crop), or (10, 3, crop, crop) with TTA, for one image."""
        pixels = rgb_tensor(image) if isinstance(image, Image.Image) else image
        return self.batch(pixels[None])[0]

    def batch(self, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, 3, crop, crop) or (B, 10, 3, crop, crop) from a (B, 3, H, W) uint8 batch, or from a list of
        (3, H, W) uint8 images of any sizes (each size is resized as one batch)."""
        import torch

        if torch.is_tensor(images):
            return self._same_size(images)
        by_size: dict[tuple, list[int]] = defaultdict(list)
        for i, image in enumerate(images):
            by_size[tuple(image.shape)].append(i)
        out: list[torch.Tensor | None] = [None] * len(images)
        for rows in by_size.values():
            for i, result in zip(rows, self._same_size(torch.stack([images[i] for i in rows]))):
                out[i] = result
        return torch.stack(out)

    def _same_size(self, images: torch.Tensor) -> torch.Tensor:
        import torch
        from torchvision.transforms.v2 import functional as TF

        resized = resize_like_pil(images, resized_size(*images.shape[-2:], self.resize), self.interpolation)
        if not self.tta:
            return self._normalise(TF.center_crop(resized, [self.crop]))
        # normalising the resized image once is cheaper than normalising ten overlapping views
        crops = torch.stack(TF.five_crop(self._normalise(resized), [self.crop]), 1)
        return torch.cat([crops, crops.flip(-1)], 1)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``to_tensor`` then ``normalize``, operation for operation (so identical pixels give identical floats)."""
        import torch

        mean, std = self._on(images.device)
        return images.to(torch.float32).div(255).sub_(mean).div_(std)

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std on ``device``, copied there once (a copy per batch would make the host wait for the GPU)."""
        if device not in self._constants:
            import torch

            self._constants[device] = tuple(torch.tensor(v, dtype=torch.float32).view(-1, 1, 1).to(device)
                                            for v in (self.mean, self.std))
        return self._constants[device]
