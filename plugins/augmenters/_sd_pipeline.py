"""The diffusers side of the Stable Diffusion augmenters: loading, schedulers, source latents and noise.

Randomness is per image: each image has a CPU ``torch.Generator`` seeded by its image seed
(CPU generators give the same numbers on every device), and everything random in a batch is
drawn from those generators as one tensor moved to the device once per draw: img2img's
posterior noise (:func:`source_latents`, one batched VAE pass instead of diffusers' per-image
loop), the initial noise and the ancestral scheduler's per-step noise (diffusers draws those
two itself, from the same generators).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image
from skinbench.sdk import to_device

if TYPE_CHECKING:
    import torch

SCHEDULERS = {
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "dpm_multistep": "DPMSolverMultistepScheduler",
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
}
SchedulerName = Literal[tuple(SCHEDULERS)]


@lru_cache(maxsize=1)
def load_pipeline(class_name: str, model: str, revision: str | None, device: str, dtype: str, slicing: bool):
    """The diffusers pipeline, kept for the next task or cell (one at a time: they are large)."""
    import torch

    import diffusers
    from diffusers.pipelines import pipeline_utils

    local = Path(model).expanduser().is_dir()
    # newer diffusers renamed torch_dtype to dtype (and warn on the old name)
    dtype_arg = "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"
    pipe = getattr(diffusers, class_name).from_pretrained(
        str(Path(model).expanduser()) if local else model, local_files_only=local, revision=None if local else revision,
        safety_checker=None, requires_safety_checker=False, **{dtype_arg: getattr(torch, dtype)},
    )
    pipe = pipe.to(device)
    if slicing:
        pipe.enable_attention_slicing()
    pipe.set_progress_bar_config(disable=True)  # the augmenter shows one bar over images
    return pipe


def clahe(image: Image.Image) -> Image.Image:
    """Contrast-limited adaptive histogram equalization (the thesis's oiliness preprocessing)."""
    from skimage.exposure import equalize_adapthist

    out = equalize_adapthist(np.asarray(image, dtype=np.float64) / 255.0)
    return Image.fromarray(np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8))


def per_image_noise(generators: list[torch.Generator], shape: tuple, dtype: torch.dtype,
                    device: torch.device) -> torch.Tensor:
    """One draw of ``shape`` (per image) from each image's CPU generator, moved to ``device`` as one tensor.

    The numbers are those diffusers' ``randn_tensor`` draws from the same generators."""
    import torch

    return to_device(torch.cat([torch.randn(shape, generator=g, dtype=dtype) for g in generators]), device)


def source_latents(pipe, sources: list[Image.Image], generators: list[torch.Generator]) -> torch.Tensor:
    """Scaled VAE latents of the sources in one batched encoder pass, each sampled from its posterior with
    noise from its own generator: what diffusers' img2img computes with one encoder pass per image."""
    import torch

    with torch.no_grad():
        pixels = pipe.image_processor.preprocess(sources).to(pipe.device, pipe.vae.dtype)
        posterior = pipe.vae.encode(pixels).latent_dist
        noise = per_image_noise(generators, (1, *posterior.mean.shape[1:]), posterior.mean.dtype, pixels.device)
        return (posterior.mean + posterior.std * noise) * pipe.vae.config.scaling_factor


def set_scheduler(pipe, name: str) -> None:
    """Swap the pipeline's scheduler for ``name`` (kept when it already is that one)."""
    import diffusers

    if type(pipe.scheduler).__name__ != SCHEDULERS[name]:
        pipe.scheduler = getattr(diffusers, SCHEDULERS[name]).from_config(pipe.scheduler.config)
