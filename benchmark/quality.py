"""Image statistics shared by the handcrafted backbone and synthetic-image quality control."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def specular_mask(rgb: np.ndarray, delta_b: float = 15, tau_v: float = 80) -> np.ndarray:
    """Seed 000 eq. 4.4: bright, blue-dominant pixels. ``rgb`` is uint8-range (H, W, 3)."""
    rgb = rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return ((b - np.maximum(r, g)) > delta_b) & (rgb.max(axis=-1) > tau_v)


def specular_coverage(rgb: np.ndarray, delta_b: float = 15, tau_v: float = 80) -> float:
    """Seed 000 eq. 4.5: fraction of pixels in the specular mask."""
    return float(specular_mask(rgb, delta_b, tau_v).mean())


def laplacian_variance(rgb: np.ndarray) -> float:
    """Sharpness: variance of the Laplacian of the grey image (uint8-range input)."""
    from scipy.ndimage import laplace

    grey = np.asarray(rgb, dtype=np.float64).mean(axis=-1)
    return float(laplace(grey).var())


def blur_ratio(synthetic: np.ndarray, real: np.ndarray) -> float:
    """Seed 000 eq. 4.2: Laplacian variance synthetic / real; below 1 means the synthetic image is smoother.
    NaN when the real image is perfectly flat (no sharpness to compare against)."""
    reference = laplacian_variance(real)
    return laplacian_variance(synthetic) / reference if reference > 0 else float("nan")


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Seed 000 eq. 4.3: structural similarity of two uint8-range RGB images of equal size (1 = identical)."""
    from skimage.metrics import structural_similarity

    side = min(a.shape[:2])
    window = min(7, side if side % 2 else side - 1)  # skimage needs an odd window that fits the image
    return float(structural_similarity(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                       channel_axis=-1, data_range=255.0, win_size=window))


LPIPS_MIN_SIDE = 64
"""Smaller images are upsampled before LPIPS: AlexNet's stride-4 stem and pooling need the room."""

TORCHVISION_TRUNKS = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights", "squeeze": "SqueezeNet1_1_Weights"}
"""The torchvision ImageNet weights each LPIPS trunk loads at construction (lpips/pretrained_networks.py)."""


def trunk_weights_file(net: str) -> Path:
    """Where torchvision keeps the trunk weights LPIPS needs (torch hub cache)."""
    import torch
    import torchvision

    weights = getattr(torchvision.models, TORCHVISION_TRUNKS[net]).IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


class LpipsScorer:
    """LPIPS distance (seed 000 eq. 4.1), built lazily and never downloading.

    The linear calibration layers ship inside the ``lpips`` package; the ImageNet trunk comes
    from the torch hub cache. When that file is absent the scorer warns once and returns NaN,
    so the other metrics are still logged. ``pretrained_trunk=False`` uses a random trunk
    (distances are then uncalibrated; only useful to test plumbing, e.g. identity gives 0).
    """

    def __init__(self, net: str = "alex", pretrained_trunk: bool = True, device: str = "cpu"):
        if net not in TORCHVISION_TRUNKS:
            raise ValueError(f"unknown LPIPS net '{net}'; known: {', '.join(TORCHVISION_TRUNKS)}")
        self.net, self.pretrained_trunk, self.device = net, pretrained_trunk, device
        self._model = None
        self._unavailable = False

    def _load(self):
        if self._model is None and not self._unavailable:
            if self.pretrained_trunk and not trunk_weights_file(self.net).exists():
                self._unavailable = True
                warnings.warn(f"LPIPS disabled: torchvision {self.net} weights not found at "
                              f"{trunk_weights_file(self.net)}; lpips is logged as NaN", stacklevel=3)
                return None
            import lpips

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torchvision's deprecation of lpips' `pretrained=` argument
                model = lpips.LPIPS(net=self.net, pretrained=True, pnet_rand=not self.pretrained_trunk, verbose=False)
            self._model = model.eval().to(self.device)
        return self._model

    @property
    def available(self) -> bool:
        return self._load() is not None

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        """Distance between two uint8-range RGB images of equal size (0 = identical); NaN if unavailable."""
        return self.batch([a], [b])[0]

    def batch(self, fakes: list[np.ndarray], reals: list[np.ndarray]) -> list[float]:
        """Distances of equal-size image pairs in one forward pass (per-image calls dominate on small images)."""
        model = self._load()
        if model is None:
            return [float("nan")] * len(fakes)
        import torch
        import torch.nn.functional as F

        def tensor(images: list[np.ndarray]) -> torch.Tensor:
            t = torch.from_numpy(np.stack(images).astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
            side = min(t.shape[-2:])
            if side < LPIPS_MIN_SIDE:
                t = F.interpolate(t, scale_factor=LPIPS_MIN_SIDE / side, mode="bilinear", align_corners=False)
            return t.to(self.device)

        with torch.no_grad():
            return [float(v) for v in model(tensor(fakes), tensor(reals)).flatten().cpu()]
