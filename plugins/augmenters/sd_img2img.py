"""Stable Diffusion img2img augmentation (seed 000 section 4.2), the thesis's generator.

Each synthetic image starts from a real training image of the same (task, class) bucket,
noised to ``strength`` and denoised towards the class prompt, so fine skin structure is
kept. Usage in a suite::

    augmenters:
      - name: sd-img2img
        params: {model: /models/stable-diffusion-v1-5, policy: proportional, amount: 0.8}

Parameters, prompt file format and caching: see ``_stable_diffusion.py`` and
``benchmark/prompts/cosmetic.yaml``.
"""
from __future__ import annotations

from PIL import Image

from skinbench.hookspecs import hookimpl
from skinbench.plugins.augmenters._stable_diffusion import COMMON_PARAMS, Job, StableDiffusionAugmenter


class StableDiffusionImg2Img(StableDiffusionAugmenter):
    """Stable Diffusion img2img from each real training image, prompted by task and class."""

    name = "sd-img2img"
    mode = "img2img"
    pipeline_class = "StableDiffusionImg2ImgPipeline"
    params = {**COMMON_PARAMS, "strength": [0.20, 0.35]}

    def mode_inputs(self, batch: list[Job], sources: list[Image.Image]) -> dict:
        return {"image": sources, "strength": batch[0].settings["strength"]}


@hookimpl
def skinbench_augmenters():
    return [StableDiffusionImg2Img]
