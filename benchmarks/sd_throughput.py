"""Throughput of the sd-img2img augmenter against a bare diffusers call on the same work.

Both sides use the same pipeline object, prompts, batch, steps, strength, guidance,
per-image CPU generators and device; the augmenter additionally plans, hashes, trims prompts,
computes the four quality metrics and saves PNGs and sidecars. Runs are interleaved and the
median time is kept.

    python benchmarks/sd_throughput.py                 # tiny random-init pipeline, 32 px, CPU
    python benchmarks/sd_throughput.py --resolution 64
    python benchmarks/sd_throughput.py --full-size     # random-init SD v1.5 shapes, 512 px, batch 8 (a GPU)
    python benchmarks/sd_throughput.py --model /models/stable-diffusion-v1-5 --resolution 512 --device cuda

``--full-size`` builds a pipeline with SD v1.5's exact shapes (860 M-parameter UNet, its VAE,
a 12-layer CLIP text encoder) and random weights, which run as fast as the real ones: nothing is
downloaded. Its defaults are the setting measured before (32 images, batch 8, 30 steps, strength 0.3).

The last line is ``ratio=<augmenter images/s ÷ bare images/s>`` (goal ≥ 0.9).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from skinbench.api import Task
from skinbench.plugins.augmenters import _stable_diffusion as sd
from skinbench.plugins.augmenters._sd_prompts import truncate
from skinbench.plugins.augmenters.sd_img2img import StableDiffusionImg2Img
from skinbench.quality import LpipsScorer

TINY = {"images": 16, "batch": 4, "resolution": 32, "steps": 12, "threads": 1, "repeats": 5}
FULL_SIZE = {"images": 32, "batch": 8, "resolution": 512, "steps": 30, "threads": 0, "repeats": 3}
"""Defaults of each setting; any option given on the command line wins. threads 0 keeps torch's default."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="pipeline folder or hub id; default: build a random-init pipeline")
    parser.add_argument("--full-size", action="store_true", help="random-init SD v1.5 shapes and the setting measured before")
    parser.add_argument("--images", type=int, help="real training images (one synthetic each)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--resolution", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--strength", type=float, default=0.3)
    parser.add_argument("--guidance", type=float, default=4.5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (1 suits tiny tensors; 0 = torch's default)")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--no-lpips-stand-in", action="store_true",
                        help="without AlexNet weights, skip LPIPS instead of timing a random-trunk stand-in")
    args = parser.parse_args()
    for key, value in (FULL_SIZE if args.full_size else TINY).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def random_init_model(folder: Path, full_size: bool) -> str:
    from skinbench.testing import build_sd15_shaped, build_tiny_sd

    return str((build_sd15_shaped if full_size else build_tiny_sd)(folder))


def training_images(folder: Path, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        path = folder / f"real{i}.png"
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(path)
        rows.append({"image": str(path), "label": 0, "group": f"p{i}"})
    return pd.DataFrame(rows)


def time_augmenter(augmenter: StableDiffusionImg2Img, train: pd.DataFrame, workdir: Path) -> float:
    start = time.perf_counter()
    out = augmenter.augment(train, Task("bench", "texture", [0], train), 0, workdir)
    elapsed = time.perf_counter() - start
    assert len(out) == len(train) and augmenter.stats["cached"] == 0
    return elapsed


def time_bare(augmenter: StableDiffusionImg2Img, train: pd.DataFrame, args: argparse.Namespace) -> float:
    """The same generation work as one augment() call, as plain pipeline calls."""
    jobs = augmenter.plan(train, "texture", 0)
    pipe = augmenter.pipeline()
    prompts = [truncate(pipe.tokenizer, jobs[0].prompt.positive), truncate(pipe.tokenizer, jobs[0].prompt.negative)]
    start = time.perf_counter()
    for first in range(0, len(jobs), args.batch):
        batch = jobs[first:first + args.batch]
        images = [Image.open(job.source).convert("RGB").resize((args.resolution,) * 2) for job in batch]
        pipe(prompt=[prompts[0]] * len(batch), negative_prompt=[prompts[1]] * len(batch),
             image=images, strength=args.strength, guidance_scale=args.guidance, num_inference_steps=args.steps,
             generator=[torch.Generator("cpu").manual_seed(job.image_seed) for job in batch], output_type="pil")
    return time.perf_counter() - start


def use_lpips_stand_in() -> str:
    """Without AlexNet weights, time a random-trunk LPIPS (same network, same compute) instead of skipping it."""
    stand_ins: dict[str, LpipsScorer] = {}

    def scorer(net: str, device: str) -> LpipsScorer:
        return stand_ins.setdefault(device, LpipsScorer(net, pretrained_trunk=False, device=device))

    sd.lpips_scorer = scorer
    return "random-trunk stand-in (AlexNet weights absent)"


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or random_init_model(tmp / "model", args.full_size)
        train = training_images(tmp, args.images)
        params = {"model": model, "resolution": args.resolution, "steps": args.steps, "strength": args.strength,
                  "guidance_scale": args.guidance, "batch_size": args.batch, "device": args.device,
                  "policy": "per_image", "amount": 1, "progress": False}
        probe = StableDiffusionImg2Img(**params)
        lpips = "on"
        if not LpipsScorer("alex").available:
            lpips = "off (no AlexNet weights)" if args.no_lpips_stand_in else use_lpips_stand_in()
            if args.no_lpips_stand_in:
                params["lpips_net"] = None
        time_bare(probe, train, args)  # warm-up: load, first-call allocations
        time_augmenter(StableDiffusionImg2Img(**params), train, tmp / "warm")
        bare, ours = [], []
        for r in range(args.repeats):
            bare.append(time_bare(probe, train, args))
            ours.append(time_augmenter(StableDiffusionImg2Img(**params), train, tmp / f"run{r}"))
        t_bare, t_ours = statistics.median(bare), statistics.median(ours)
        pipe = probe.pipeline()
        unet_params = sum(p.numel() for p in pipe.unet.parameters()) / 1e6
        print(f"device={pipe.device} dtype={pipe.unet.dtype} unet={unet_params:.1f}M full_size={args.full_size} "
              f"images={len(train)} batch={args.batch} resolution={args.resolution} steps={args.steps} "
              f"strength={args.strength} threads={torch.get_num_threads()} lpips={lpips}")
        print(f"bare: {len(train) / t_bare:.2f} img/s (median {t_bare:.3f}s of {[round(t, 3) for t in bare]})")
        print(f"augmenter: {len(train) / t_ours:.2f} img/s (median {t_ours:.3f}s of {[round(t, 3) for t in ours]})")
        print(f"ratio={t_bare / t_ours:.3f}")


if __name__ == "__main__":
    main()
