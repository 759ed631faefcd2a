"""An embedded, deterministic simulator of cosmetic skin patches, so skinbench runs offline.

It writes the cosmetic wide CSV of the thesis plus PNG patches and reads them back with
the ``cosmetic-csv`` reader, so the demo exercises the real data path. Each patient has
a skin tone and a latent level per feature shared by both regions (so leaking a patient
across the split would inflate scores); labels follow the thesis's skewed priors
(Tables A.1 + A.2); every feature draws a visible cue, and elasticity's cue is
deliberately faint so that one task sits near chance.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from PIL import Image
from pydantic import Field
from skinbench.sdk import config_hash, Dataset, default_cache_dir, hookimpl, PluginParams, Task

from .cosmetic_csv import FEATURES, THESIS_LABEL_MAPS, read_wide_csv

PRIORS = {  # counts of classes -1, 0, 1 over the thesis's 77 rows per feature
    "moisture": (52, 24, 1), "oiliness": (72, 3, 2), "elasticity": (6, 48, 23),
    "texture": (8, 49, 20), "hyperpigmentation": (8, 44, 25),
}
TONES = {"light": (70.0, 0.513), "medium": (56.0, 0.231), "dark": (38.0, 0.256)}  # L*, share (thesis §4.1)
PATIENT_SHARE = 0.8  # how much of a region's latent level is the patient's own


class DemoDataset(Dataset):
    """Simulated cosmetic patches (≈40 patients × 2 regions × 5 features), generated on first use."""

    name = "demo"

    class Params(PluginParams):
        n_patients: int = Field(40, ge=3)
        regions: list[str] = Field(default_factory=lambda: ["cheek", "forehead"], min_length=1)
        image_size: int = Field(96, ge=8, le=1024)
        seed: int = 0
        faint_task: Literal["moisture", "oiliness", "elasticity", "texture", "hyperpigmentation"] | None = "elasticity"
        """The feature whose visual cue is made faint, so that one task sits near chance."""
        root: str = ""
        """Where to write the simulated dataset (default: the skinbench cache)."""
        label_maps: dict[str, dict[int, Any]] = Field(default_factory=lambda: THESIS_LABEL_MAPS)

    meta = {"license": "Apache-2.0", "citation": "simulator after Mind the Gap: Can Synthetic Augmentation Boost Skin Feature Classification? (MSc thesis, UCL, 2025), §4.1", "source": ["skinbench demo"]}

    def tasks(self) -> list[Task]:
        csv = self.generate()
        config = {"features": FEATURES, "image_column": "{feature}_img", "label_column": "{feature}",
                  "group_column": "patient_id", "label_maps": self.config["label_maps"], "root": ""}
        return read_wide_csv(csv, self.name, config)

    def generate(self) -> Path:
        """Write the CSV and images once per parameter set; later calls reuse them."""
        sim = {k: v for k, v in self.config.items() if k not in ("root", "label_maps")}
        base = Path(self.config["root"]) if self.config["root"] else default_cache_dir() / "demo"
        folder = base / config_hash(sim, 12)
        csv = folder / "cosmetic.csv"
        if csv.exists():
            return csv
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=".tmp-"))
        try:
            simulate(tmp, **sim)
            os.replace(tmp, folder)  # atomic: a killed generation leaves no half-written demo
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # a concurrent run finished first
        return csv


def simulate(folder: Path, n_patients: int, regions: list[str], image_size: int, seed: int, faint_task: str) -> None:
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    labels = draw_labels(rng, n_patients, len(regions))
    tone_names = list(TONES)
    tones = rng.choice(len(tone_names), size=n_patients, p=[s for _, s in TONES.values()])
    rows = []
    for p in range(n_patients):
        tone = tone_names[tones[p]]
        for r, region in enumerate(regions):
            row = {"patient_id": f"P{p:03d}", "region": region, "skin_tone": tone}
            for feature in FEATURES:
                level = int(labels[feature][p, r])
                image = render_patch(rng, feature, level, TONES[tone][0], image_size, faint=feature == faint_task)
                name = f"images/P{p:03d}_{region}_{feature}.png"
                Image.fromarray(image).save(folder / name)
                row[f"{feature}_img"], row[feature] = name, level
            rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "cosmetic.csv", index=False)


def draw_labels(rng: np.random.Generator, n_patients: int, n_regions: int) -> dict[str, np.ndarray]:
    """Ordinal levels from a patient latent plus region noise, cut at the thesis's prior quantiles.

    Every class occurs at least once, so small simulations keep all declared classes."""
    from scipy.stats import norm

    out = {}
    for feature, counts in PRIORS.items():
        latent = PATIENT_SHARE * rng.standard_normal((n_patients, 1)) + np.sqrt(1 - PATIENT_SHARE ** 2) * rng.standard_normal((n_patients, n_regions))
        cuts = np.cumsum(counts)[:2] / sum(counts)
        u = norm.cdf(latent)
        levels = np.where(u < cuts[0], -1, np.where(u < cuts[1], 0, 1))
        flat = levels.ravel()
        for value in (-1, 0, 1):
            if not (flat == value).any():
                candidates = np.flatnonzero(flat == np.bincount(flat + 1).argmax() - 1)
                flat[rng.choice(candidates)] = value
        out[feature] = flat.reshape(levels.shape)
    return out


def render_patch(rng: np.random.Generator, feature: str, level: int, lightness: float, size: int, faint: bool) -> np.ndarray:
    """A skin patch: tone, illumination, micro-texture, then the feature's cue."""
    from scipy import ndimage
    from skimage.color import lab2rgb

    yy, xx = np.mgrid[0:size, 0:size] / size
    lab = np.zeros((size, size, 3))
    lab[..., 0] = lightness + rng.normal(0, 3) + 6 * (rng.uniform(-1, 1) * (xx - 0.5) + rng.uniform(-1, 1) * (yy - 0.5))
    lab[..., 1] = rng.normal(14, 3)
    lab[..., 2] = rng.normal(18, 3)
    roughness = {-1: 4.6, 0: 3.8, 1: 3.1}[level] if feature == "texture" else 3.8
    lab[..., 0] += roughness * ndimage.gaussian_filter(rng.standard_normal((size, size)), 0.8) * rng.uniform(0.8, 1.2)
    CUES[feature](rng, lab, level, size, faint)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a few out-of-gamut pixels are clipped, by design
        rgb = lab2rgb(np.clip(lab, [0, -60, -60], [100, 60, 60]))
    if feature == "oiliness":
        rgb = add_specular(rng, rgb, level, size)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def spots(rng, lab, level, size, faint):
    """Hyperpigmentation: melanin micro-spots, many at -1 (severe), few at +1 (minimal)."""
    count = max(0, int(rng.normal({-1: 26, 0: 13, 1: 4}[level], 3)))
    for _ in range(count):
        cy, cx, radius = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(1.2, 2.8) * size / 96
        blob = np.exp(-(((np.arange(size)[:, None] - cy) ** 2 + (np.arange(size)[None, :] - cx) ** 2) / (2 * radius ** 2)))
        lab[..., 0] -= 22 * blob
        lab[..., 2] += 8 * blob


def lines(rng, lab, level, size, faint):
    """Moisture: dehydration micro-cracks, more and darker when dry (-1)."""
    from scipy import ndimage

    count = max(0, int(rng.normal({-1: 12, 0: 5, 1: 2}[level], 2)))
    canvas = np.zeros((size, size))
    for _ in range(count):
        y, x, angle = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0, np.pi)
        length = rng.uniform(0.2, 0.5) * size
        t = np.linspace(-length / 2, length / 2, int(length * 2))
        ys, xs = (y + t * np.sin(angle)).astype(int), (x + t * np.cos(angle)).astype(int)
        ok = (ys >= 0) & (ys < size) & (xs >= 0) & (xs < size)
        canvas[ys[ok], xs[ok]] = 1
    lab[..., 0] -= 14 * ndimage.gaussian_filter(canvas, 0.6) * 2.5


def elasticity(rng, lab, level, size, faint):
    """Elasticity: broad creases when slack; almost invisible when ``faint`` (the near-chance task)."""
    strength = (0.4 if faint else 4.0) * {-1: 1.0, 0: 0.5, 1: 0.0}[level]
    yy = np.arange(size)[:, None] / size
    lab[..., 0] -= strength * (np.sin(2 * np.pi * 3 * yy + rng.uniform(0, np.pi)) > 0.8)


def texture(rng, lab, level, size, faint):
    """Texture: handled by the roughness of the micro-texture in :func:`render_patch`; pores add to it."""
    count = max(0, int(rng.normal({-1: 28, 0: 20, 1: 13}[level], 5)))
    ys, xs = rng.integers(0, size, count), rng.integers(0, size, count)
    lab[ys, xs, 0] -= 10


def oil(rng, lab, level, size, faint):
    """Oiliness: drawn after colour conversion (see :func:`add_specular`)."""


def add_specular(rng, rgb: np.ndarray, level: int, size: int) -> np.ndarray:
    """Blue-white specular highlights covering ≈3% / 15% / 40% of the patch (thesis eq. 4.4-4.5)."""
    from scipy import ndimage

    target = max(0.0, rng.normal({-1: 0.03, 0: 0.15, 1: 0.40}[level], 0.02))
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), 3)
    mask = field > np.quantile(field, 1 - target) if target > 0 else np.zeros_like(field, bool)
    out = rgb.copy()
    out[mask] = out[mask] * 0.3 + np.array([0.55, 0.7, 0.98]) * 0.7
    return out


CUES = {"hyperpigmentation": spots, "moisture": lines, "elasticity": elasticity, "texture": texture, "oiliness": oil}


@hookimpl
def skinbench_datasets():
    return [DemoDataset]
