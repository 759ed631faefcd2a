"""Image statistics for synthetic-image quality control and the handcrafted backbone (thesis §4.2).

The metrics run in torch on whatever device holds the images, for a whole batch in one call:
a Stable Diffusion augmenter computes them on the GPU next to the pipeline instead of on the
CPU after each batch. Images are (B, 3, H, W) tensors on the uint8 scale (0-255, any float or
integer dtype). Each metric equals its reference implementation on the CPU within float
tolerance: scikit-image's ``structural_similarity`` (SSIM), scipy's ``ndimage.laplace`` (blur
ratio), the ``lpips`` package (LPIPS); see ``tests/test_quality.py``.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

LPIPS_MIN_SIDE = 64
"""Smaller images are upsampled before LPIPS: AlexNet's stride-4 stem and pooling need the room."""

TORCHVISION_TRUNKS = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights", "squeeze": "SqueezeNet1_1_Weights"}
"""The torchvision ImageNet weights each LPIPS trunk loads at construction (lpips/pretrained_networks.py)."""

SSIM_K1, SSIM_K2, SSIM_WINDOW = 0.01, 0.03, 7
"""scikit-image's defaults (uniform 7x7 window, sample covariance, Wang et al. 2004 constants)."""

QUALITY_COLUMNS = ("lpips", "blur_ratio", "ssim", "specular_coverage")
"""The columns of :func:`quality_metrics`, as logged for every synthetic image."""
LAPLACE = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def _exact(images: torch.Tensor) -> torch.Tensor:
    """float64 where the device has it (the references compute in float64); float32 on Apple MPS."""
    import torch

    return images.to(torch.float32 if images.device.type == "mps" else torch.float64)


def specular_mask(rgb: torch.Tensor, delta_b: float = 15, tau_v: float = 80) -> torch.Tensor:
    """Seed 000 eq. 4.4: bright, blue-dominant pixels, (..., 3, H, W) -> (..., H, W) bool."""
    import torch

    rgb = rgb.to(torch.float32)
    r, g, b = rgb.unbind(-3)
    return ((b - torch.maximum(r, g)) > delta_b) & (rgb.amax(-3) > tau_v)


def specular_coverage(rgb: torch.Tensor | np.ndarray, delta_b: float = 15, tau_v: float = 80) -> torch.Tensor | float:
    """Seed 000 eq. 4.5: fraction of pixels in the specular mask, per image of a (B, 3, H, W) batch.

    A single (H, W, 3) array (the handcrafted backbone's input) gives a float."""
    import torch

    if isinstance(rgb, np.ndarray):
        return float(specular_coverage(torch.as_tensor(np.array(rgb, copy=True)).permute(2, 0, 1), delta_b, tau_v))
    return specular_mask(rgb, delta_b, tau_v).to(torch.float32).mean((-2, -1))


def laplacian_variance(rgb: torch.Tensor) -> torch.Tensor:
    """Sharpness per image: variance of the Laplacian of the grey (channel-mean) image.

    The border is replicated, which equals scipy's ``mode='reflect'`` for a 3x3 kernel."""
    import torch
    import torch.nn.functional as F

    grey = _exact(rgb).mean(-3, keepdim=True)
    padded = F.pad(grey, (1, 1, 1, 1), mode="replicate")
    response = F.conv2d(padded, torch.tensor(LAPLACE, dtype=grey.dtype, device=grey.device)[None, None])
    return response.flatten(1).var(1, unbiased=False)


def blur_ratio(synthetic: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Seed 000 eq. 4.2: Laplacian variance synthetic / real, per image; below 1 means the synthetic
    image is smoother. NaN where the real image is perfectly flat (no sharpness to compare against)."""
    import torch

    reference = laplacian_variance(real)
    ratio = laplacian_variance(synthetic) / reference
    return torch.where(reference > 0, ratio, torch.full_like(ratio, float("nan")))


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Seed 000 eq. 4.3: structural similarity per image pair (1 = identical), as scikit-image computes it
    with ``channel_axis``, ``data_range=255`` and a 7-pixel window (the largest odd one that fits if smaller)."""
    import torch.nn.functional as F

    x, y = _exact(a), _exact(b)
    side = min(x.shape[-2:])
    window = min(SSIM_WINDOW, side if side % 2 else side - 1)
    # skimage filters with a uniform window, then drops the (window - 1) / 2 border pixels whose
    # window leaves the image: exactly an unpadded average pool
    def mean(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, window, stride=1)

    n = window * window
    cov_norm = n / (n - 1)
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (SSIM_K1 * 255.0) ** 2, (SSIM_K2 * 255.0) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean((-3, -2, -1))


def quality_metrics(synthetic: torch.Tensor, real: torch.Tensor, lpips: "LpipsScorer | None" = None) -> torch.Tensor:
    """All four metrics of a batch in one call: a (B, 4) float64 tensor on the images' device, columns
    in :data:`QUALITY_COLUMNS` order. LPIPS is NaN without a scorer (or without its trunk weights)."""
    import torch

    nan = torch.full((len(synthetic),), float("nan"), dtype=torch.float64, device=synthetic.device)
    distance = lpips.distances(synthetic, real).to(nan) if lpips is not None else nan
    columns = [distance, blur_ratio(synthetic, real), ssim(synthetic, real), specular_coverage(synthetic)]
    return torch.stack([c.to(nan) for c in columns], 1)


def trunk_weights_file(net: str) -> Path:
    """Where torchvision keeps the trunk weights LPIPS needs (torch hub cache)."""
    import torch

    import torchvision

    weights = getattr(torchvision.models, TORCHVISION_TRUNKS[net]).IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


class LpipsScorer:
    """LPIPS distance (thesis eq. 4.1), built lazily and never downloading.

    The linear calibration layers ship inside the ``lpips`` package; the ImageNet trunk comes
    from the torch hub cache. When that file is absent the scorer warns once and returns NaN,
    so the other metrics are still logged. ``pretrained_trunk=False`` uses a random trunk
    (distances are then uncalibrated; only useful to test plumbing, e.g. identity gives 0).
    """

    def __init__(self, net: str = "alex", pretrained_trunk: bool = True, device: str | torch.device = "cpu"):
        import torch

        if net not in TORCHVISION_TRUNKS:
            raise ValueError(f"unknown LPIPS net '{net}'; known: {', '.join(TORCHVISION_TRUNKS)}")
        self.net, self.pretrained_trunk, self.device = net, pretrained_trunk, torch.device(device)
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
        """Distance between two (H, W, 3) uint8-range images of equal size (0 = identical); NaN if unavailable."""
        import torch

        def batch(image: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]

        return float(self.distances(batch(a), batch(b))[0])

    def distances(self, synthetic: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Distances of equal-size (B, 3, H, W) uint8-range image pairs in one fp32 forward pass, on the
        scorer's device; NaN for every pair when the trunk weights are absent."""
        import torch
        import torch.nn.functional as F

        model = self._load()
        if model is None:
            return torch.full((len(synthetic),), float("nan"))

        def scaled(images: torch.Tensor) -> torch.Tensor:
            t = images.to(self.device, torch.float32) / 127.5 - 1.0
            side = min(t.shape[-2:])
            if side < LPIPS_MIN_SIDE:
                t = F.interpolate(t, scale_factor=LPIPS_MIN_SIDE / side, mode="bilinear", align_corners=False)
            return t

        with torch.inference_mode():
            return model(scaled(synthetic), scaled(real)).flatten()
