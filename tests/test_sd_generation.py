"""The SD augmenter's fast path against the plain diffusers call it replaces (tiny pipeline, CPU).

The augmenter encodes a batch's sources in one VAE pass, keeps images as tensors, computes the
quality metrics in torch and writes PNGs on background threads. None of that may change what
is generated or logged: images equal a bare ``pipe(...)`` call with one CPU generator per image,
and the logged metrics equal the CPU reference libraries on the stored PNGs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageOps
from scipy.ndimage import laplace
from skimage.metrics import structural_similarity
from skinbench.api import Task
from skinbench.plugins.augmenters._sd_cache import BackgroundWriter
from skinbench.plugins.augmenters._sd_prompts import truncate
from skinbench.plugins.augmenters.sd_img2img import StableDiffusionImg2Img
from tiny_sd import model, one_thread  # noqa: F401 - module fixtures shared by the SD tests

SETTING = {"resolution": 32, "steps": 8, "strength": 0.5, "guidance_scale": 4.5, "batch_size": 3,
           "policy": "per_image", "amount": 1, "progress": False, "lpips_net": None, "device": "cpu"}
"""Image comparisons run on the CPU in fp32, where kernels are deterministic; the metrics test also runs on
CUDA when there is one (metrics are checked against the PNGs they were computed from)."""
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def train(tmp_path_factory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(3)
    rows = []
    for i in range(4):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)).save(path)
        rows.append({"image": str(path), "label": i % 2, "group": f"p{i}"})
    return pd.DataFrame(rows)


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def reference(path: str) -> np.ndarray:
    return np.asarray(ImageOps.fit(Image.open(path).convert("RGB"), (32, 32), Image.Resampling.BICUBIC))


@pytest.mark.parametrize("scheduler", ["euler_ancestral", "ddim"])  # with and without per-step noise
def test_images_equal_a_bare_diffusers_call_with_one_generator_per_image(scheduler, model, train, tmp_path):
    augmenter = StableDiffusionImg2Img(model=model, scheduler=scheduler, **SETTING)
    out = augmenter.augment(train, Task("d", "texture", [0, 1], train), 0, tmp_path)
    jobs = augmenter.plan(train, "texture", 0, [0, 1])
    assert [len([j for j in jobs if j.batch == b]) for b in (0, 1)] == [3, 1]  # a full and a partial batch
    pipe = augmenter.pipeline()
    for b in (0, 1):
        batch = [job for job in jobs if job.batch == b]
        settings = batch[0].settings
        images = pipe(prompt=[truncate(pipe.tokenizer, j.prompt.positive) for j in batch],
                      negative_prompt=[truncate(pipe.tokenizer, j.prompt.negative) for j in batch],
                      image=[Image.fromarray(reference(j.source)) for j in batch], strength=settings["strength"],
                      guidance_scale=settings["guidance_scale"], num_inference_steps=settings["steps"],
                      generator=[torch.Generator("cpu").manual_seed(j.image_seed) for j in batch],
                      output_type="pil").images
        for job, image in zip(batch, images):
            stored = pixels(out.loc[out["image_seed"] == job.image_seed, "image"].iloc[0])
            # one batched VAE pass instead of one per image: float rounding only
            assert np.abs(stored - np.asarray(image).astype(int)).max() <= 1


@pytest.mark.parametrize("device", DEVICES)
def test_logged_metrics_equal_the_reference_libraries_on_the_stored_pngs(device, model, train, tmp_path):
    task = Task("d", "texture", [0, 1], train)
    out = StableDiffusionImg2Img(model=model, **{**SETTING, "device": device}).augment(train, task, 1, tmp_path)
    for row in out.itertuples():
        fake, real = pixels(row.image).astype(np.float64), reference(row.source).astype(np.float64)
        assert row.ssim == pytest.approx(structural_similarity(fake, real, channel_axis=-1, data_range=255.0), rel=1e-9)
        sharpness = laplace(fake.mean(-1)).var() / laplace(real.mean(-1)).var()
        assert row.blur_ratio == pytest.approx(sharpness, rel=1e-9)
        r, g, b = fake[..., 0], fake[..., 1], fake[..., 2]
        assert row.specular_coverage == pytest.approx((((b - np.maximum(r, g)) > 15) & (fake.max(-1) > 80)).mean())
        assert np.isnan(row.lpips)  # lpips_net: None


def test_background_writes_finish_before_the_block_ends_and_raise_their_errors(tmp_path):
    written = []

    def write(name: str) -> None:
        if name == "bad":
            raise OSError("disk full")
        (tmp_path / name).write_text(name)
        written.append(name)

    with pytest.raises(OSError, match="disk full"):
        with BackgroundWriter(workers=2, max_pending=1) as writer:
            for name in ("a", "bad", "c", "d"):
                writer.submit(write, name)
    assert {"a"} <= set(written) and all(Path(tmp_path / n).read_text() == n for n in written)

    with pytest.raises(KeyError):  # a failure in the block itself: what was submitted is still written
        with BackgroundWriter() as writer:
            writer.submit(write, "e")
            raise KeyError("generation failed")
    assert (tmp_path / "e").read_text() == "e"
