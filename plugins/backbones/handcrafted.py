"""A weight-free baseline: colour, gradient and texture statistics any foundation model must beat."""
from __future__ import annotations

import importlib.metadata
from typing import Annotated, Any

import numpy as np
from pydantic import Field
from skinbench.sdk import Backbone, hookimpl, PluginParams, specular_coverage

LBP_POINTS = 8


class HandcraftedBackbone(Backbone):
    """CIELAB colour statistics, gradient/texture statistics and specular coverage (no weights)."""

    name = "handcrafted"

    class Params(PluginParams):
        size: Annotated[int, Field(ge=8, le=4096)] = Field(128, description="images are resized to size x size first")
        delta_b: Annotated[float, Field(ge=0, le=255)] = Field(15.0, description="specular mask: blue margin (eq. 4.4)")
        tau_v: Annotated[float, Field(ge=0, le=255)] = Field(80.0, description="specular mask: brightness (eq. 4.4)")

    runtime_params = frozenset()
    meta = {"license": "Apache-2.0", "pretraining_data": [],
            "citation": "Mind the Gap: Can Synthetic Augmentation Boost Skin Feature Classification? (MSc thesis, UCL, 2025), eq. 4.4-4.5 (specular coverage)"}

    def artefacts(self) -> dict[str, Any]:
        """The texture and colour statistics come from scikit-image and scipy, whose versions can change them."""
        return {name: importlib.metadata.version(name) for name in ("scikit-image", "scipy")}

    def embed(self, images) -> np.ndarray:
        return np.stack([self.features(img) for img in images]).astype(np.float32)

    def features(self, image) -> np.ndarray:
        size = self.config["size"]
        rgb = np.asarray(image.convert("RGB").resize((size, size)), dtype=np.uint8)
        return np.concatenate([self.colour(rgb), self.gradients(rgb), self.texture(rgb),
                               [specular_coverage(rgb, self.config["delta_b"], self.config["tau_v"])]])

    @staticmethod
    def colour(rgb: np.ndarray) -> np.ndarray:
        """Per-channel Lab mean, std and percentiles, plus dark- and bright-spot fractions."""
        from skimage.color import rgb2lab

        lab = rgb2lab(rgb).reshape(-1, 3)
        stats = [lab.mean(0), lab.std(0), *np.percentile(lab, [5, 50, 95], axis=0)]
        light = lab[:, 0]
        spots = [(light < light.mean() - k * light.std()).mean() for k in (1.0, 1.5, 2.0)]
        highlights = [(light > light.mean() + k * light.std()).mean() for k in (1.5, 2.0)]
        return np.concatenate([*stats, spots, highlights])

    @staticmethod
    def gradients(rgb: np.ndarray) -> np.ndarray:
        """Sobel magnitude statistics and Laplacian variance (sharpness, fine lines)."""
        from scipy import ndimage

        grey = rgb.mean(-1)
        magnitude = np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1))
        laplace = ndimage.laplace(grey)
        smooth = ndimage.gaussian_filter(grey, 2)
        return np.array([magnitude.mean(), magnitude.std(), np.percentile(magnitude, 90),
                         laplace.var(), np.abs(grey - smooth).mean()])

    @staticmethod
    def texture(rgb: np.ndarray) -> np.ndarray:
        """Uniform LBP histogram and grey-level co-occurrence properties."""
        from skimage.feature import graycomatrix, graycoprops, local_binary_pattern

        grey = (rgb.mean(-1)).astype(np.uint8)
        lbp = local_binary_pattern(grey, LBP_POINTS, 1, method="uniform")
        hist = np.bincount(lbp.astype(int).ravel(), minlength=LBP_POINTS + 2) / lbp.size
        glcm = graycomatrix(grey // 8, distances=[1, 3], angles=[0, np.pi / 2], levels=32, symmetric=True, normed=True)
        props = [graycoprops(glcm, p).mean() for p in ("contrast", "homogeneity", "energy", "correlation")]
        return np.concatenate([hist, props])


@hookimpl
def skinbench_backbones():
    return [HandcraftedBackbone]
