"""Stable Diffusion inpainting augmentation (Sagers et al.'s inpainting mode).

A seeded random rectangle covering ``mask_fraction`` of the real image is repainted from
the class prompt; the rest of the image is kept. Works with inpainting checkpoints
(9-channel UNet) and with plain text-to-image ones (diffusers blends latents for those).
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from PIL import Image
from pydantic import Field
from skinbench.sdk import hookimpl
from skinbench.plugins.augmenters._sd_cache import Job
from skinbench.plugins.augmenters._stable_diffusion import (
    StableDiffusionAugmenter,
    StableDiffusionParams,
    Strength,
)


def rectangle_mask(side: int, fraction: float, seed: int) -> Image.Image:
    """White (repaint) rectangle of about ``fraction`` of the area, placed by ``seed``."""
    rng = np.random.default_rng(seed)
    edge = max(1, round(side * fraction ** 0.5))
    top, left = (int(v) for v in rng.integers(0, side - edge + 1, size=2))
    mask = np.zeros((side, side), np.uint8)
    mask[top:top + edge, left:left + edge] = 255
    return Image.fromarray(mask, mode="L")


class StableDiffusionInpaint(StableDiffusionAugmenter):
    """Stable Diffusion inpainting of a random region of each real training image."""

    name = "sd-inpaint"
    mode = "inpaint"
    pipeline_class = "StableDiffusionInpaintPipeline"

    class Params(StableDiffusionParams):
        strength: Strength = [0.8, 1.0]
        mask_fraction: Annotated[float, Field(gt=0, le=1)] = Field(0.25, description="share of the image repainted")

    def draw_settings(self, settings: dict, seed: int) -> dict:
        return {**super().draw_settings(settings, seed), "mask_fraction": float(self.config["mask_fraction"])}

    def mode_inputs(self, pipe, batch: list[Job], sources: list[Image.Image], generators) -> dict:
        # diffusers draws the noise (and encodes each masked image) from the per-image generators itself
        side = self.config["resolution"]
        masks = [rectangle_mask(side, job.settings["mask_fraction"], job.image_seed) for job in batch]
        return {"image": sources, "mask_image": masks, "strength": batch[0].settings["strength"],
                "height": side, "width": side}


@hookimpl
def skinbench_augmenters():
    return [StableDiffusionInpaint]
