"""Stable Diffusion img2img augmentation (thesis section 4.2), the thesis's generator.

Each synthetic image starts from a real training image of the same (task, class) bucket,
noised to ``strength`` and denoised towards the class prompt, so fine skin structure is
kept. Usage in a suite::

    augmenters:
      - name: sd-img2img
        params: {model: /models/stable-diffusion-v1-5, policy: proportional, amount: 0.8}

Parameters: ``StableDiffusionParams`` in ``_stable_diffusion.py``; prompt file format:
``benchmark/prompts/cosmetic.yaml``.
"""
from __future__ import annotations

from PIL import Image
from pydantic import Field
from skinbench.sdk import hookimpl
from skinbench.plugins.augmenters._sd_cache import Job
from skinbench.plugins.augmenters._sd_pipeline import source_latents
from skinbench.plugins.augmenters._stable_diffusion import (
    StableDiffusionAugmenter,
    StableDiffusionParams,
    Strength,
)


class StableDiffusionImg2Img(StableDiffusionAugmenter):
    """Stable Diffusion img2img from each real training image, prompted by task and class."""

    name = "sd-img2img"
    mode = "img2img"
    pipeline_class = "StableDiffusionImg2ImgPipeline"

    class Params(StableDiffusionParams):
        strength: Strength = Field([0.20, 0.35], description="how far each source is noised (a range: jitter)")

    def mode_inputs(self, pipe, batch: list[Job], sources: list[Image.Image], generators) -> dict:
        # latents as `image`: diffusers skips its own (per-image) VAE encoding and adds the noise
        return {"image": source_latents(pipe, sources, generators), "strength": batch[0].settings["strength"]}


@hookimpl
def skinbench_augmenters():
    return [StableDiffusionImg2Img]
