"""Throughput of the sd-img2img augmenter against a bare diffusers call on the same work.

Both sides use the same pipeline object, prompts, batch, steps, strength, guidance,
generators and device; the augmenter additionally plans, hashes, trims prompts, saves PNGs
and computes the quality metrics. Runs are interleaved and the median time is kept.

    python benchmarks/sd_throughput.py                 # tiny random-init pipeline, CPU
    python benchmarks/sd_throughput.py --model /models/stable-diffusion-v1-5 --resolution 512 --device cuda

The last line is ``ratio=<augmenter images/s ÷ bare images/s>`` (goal ≥ 0.9).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from skinbench.api import Task
from skinbench.quality import LpipsScorer
from skinbench.plugins.augmenters import _stable_diffusion as sd
from skinbench.plugins.augmenters.sd_img2img import StableDiffusionImg2Img


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="pipeline folder or hub id; default: build the tiny test pipeline")
    parser.add_argument("--images", type=int, default=16, help="real training images (one synthetic each)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--strength", type=float, default=0.3)
    parser.add_argument("--guidance", type=float, default=4.5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 suits tiny tensors)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-lpips-stand-in", action="store_true",
                        help="without AlexNet weights, skip LPIPS instead of timing a random-trunk stand-in")
    return parser.parse_args()


def tiny_model(folder: Path) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tiny_sd import build_tiny_sd

    return str(build_tiny_sd(folder))


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
    prompts = [sd.truncate(pipe.tokenizer, jobs[0].prompt.positive), sd.truncate(pipe.tokenizer, jobs[0].prompt.negative)]
    start = time.perf_counter()
    for first in range(0, len(jobs), args.batch):
        batch = jobs[first:first + args.batch]
        images = [Image.open(job.source).convert("RGB").resize((args.resolution,) * 2) for job in batch]
        pipe(prompt=[prompts[0]] * len(batch), negative_prompt=[prompts[1]] * len(batch),
             image=images, strength=args.strength, guidance_scale=args.guidance, num_inference_steps=args.steps,
             generator=[torch.Generator("cpu").manual_seed(job.image_seed) for job in batch], output_type="pil")
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or tiny_model(tmp / "model")
        train = training_images(tmp, args.images)
        params = {"model": model, "resolution": args.resolution, "steps": args.steps, "strength": args.strength,
                  "guidance_scale": args.guidance, "batch_size": args.batch, "device": args.device,
                  "policy": "per_image", "amount": 1, "progress": False}
        probe = StableDiffusionImg2Img(**params)
        lpips = "on"
        if not sd.lpips_scorer("alex").available:
            lpips = "off (no AlexNet weights)"
            if not args.no_lpips_stand_in:  # same network and compute, random weights: times the metric's cost
                stand_in = LpipsScorer("alex", pretrained_trunk=False)
                sd.lpips_scorer = lambda net: stand_in
                lpips = "random-trunk stand-in (AlexNet weights absent)"
        time_bare(probe, train, args)  # warm-up: load, first-call allocations
        time_augmenter(StableDiffusionImg2Img(**params), train, tmp / "warm")
        bare, ours = [], []
        for r in range(args.repeats):
            bare.append(time_bare(probe, train, args))
            ours.append(time_augmenter(StableDiffusionImg2Img(**params), train, tmp / f"run{r}"))
        t_bare, t_ours = statistics.median(bare), statistics.median(ours)
        print(f"device={probe.pipeline().device} images={len(train)} batch={args.batch} resolution={args.resolution} "
              f"steps={args.steps} strength={args.strength} threads={args.threads} lpips={lpips}")
        print(f"bare: {len(train) / t_bare:.2f} img/s (median {t_bare:.3f}s of {bare})")
        print(f"augmenter: {len(train) / t_ours:.2f} img/s (median {t_ours:.3f}s of {ours})")
        print(f"ratio={t_bare / t_ours:.3f}")


if __name__ == "__main__":
    main()
