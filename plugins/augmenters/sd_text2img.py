"""Stable Diffusion text-to-image augmentation (Sagers et al.'s text-to-image mode).

Images come from the class prompt alone; the real image of the bucket is only the
bookkeeping source (its patient id, and the reference for the quality metrics).
"""
from __future__ import annotations

from PIL import Image
from skinbench.sdk import hookimpl
from skinbench.plugins.augmenters._sd_cache import Job
from skinbench.plugins.augmenters._stable_diffusion import (
    StableDiffusionAugmenter,
    StableDiffusionParams,
)


class StableDiffusionText2Img(StableDiffusionAugmenter):
    """Stable Diffusion text-to-image from the task and class prompt."""

    name = "sd-text2img"
    mode = "text2img"
    pipeline_class = "StableDiffusionPipeline"

    class Params(StableDiffusionParams):
        pass

    def mode_inputs(self, pipe, batch: list[Job], sources: list[Image.Image], generators) -> dict:
        side = self.config["resolution"]
        return {"height": side, "width": side}


@hookimpl
def skinbench_augmenters():
    return [StableDiffusionText2Img]
