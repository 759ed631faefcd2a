"""Images/s of skinbench's embedding pipeline against a bare timm loop and against the forward-only limit.

- **bare**: what a user would write: decode with PIL, timm's eval transform, batched forward under
  ``torch.inference_mode`` (and the same autocast as the suite side).
- **suite**: ``skinbench.execution.embedding.embed_paths`` without a cache (so it also hashes every file).
- **limit**: the same model's forward alone, on pre-decoded, preprocessed tensors already on the
  device, at the same resolution, batch size and precision: no pipeline can beat it.

Prints the rates, the TTA cost per image relative to one view, ``limit_ratio=<suite/limit>`` and,
as its LAST line, ``ratio=<suite/bare>``. Random init by default, so it runs offline.

    python benchmarks/embed_throughput.py --model resnet18 --n 96 --batch-size 32 --device cpu
    python benchmarks/embed_throughput.py --full-size --num-workers 8    # a GPU: the setting measured before
    python benchmarks/embed_throughput.py --backbone open-clip --n 96 --batch-size 32   # ViT-B-16, random init

With ``--backbone open-clip`` (default model open_clip's ``ViT-B-16``), **bare** is open_clip's own eval
transform (``image_transform_v2`` of the model's ``preprocess_cfg``) and ``model.encode_image``.

``--full-size`` is DINOv2 ViT-B/14 at its native 518 px on 512 JPEGs of 448 px, batch 64,
``precision auto`` (bf16 autocast on CUDA), device auto; any option given explicitly wins.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image

from skinbench.devices import autocast, resolve_device, resolve_precision
from skinbench.execution.embedding import embed_paths
from skinbench.plugins.backbones.open_clip_model import OpenClipBackbone
from skinbench.plugins.backbones.timm_models import TimmBackbone

DEFAULTS = {"model": "resnet18", "n": 96, "image_size": 256, "batch_size": 32, "device": "cpu", "precision": "fp32",
            "num_workers": 0, "repeats": 3, "tta": True}
FULL_SIZE = {"model": "vit_base_patch14_dinov2.lvd142m", "n": 512, "image_size": 448, "batch_size": 64,
             "device": "auto", "precision": "auto", "num_workers": 8, "repeats": 3, "tta": False}
"""The suite's TTA rate is skipped at full size (ten forwards per image); ``--tta`` turns it on."""


def write_images(folder: Path, n: int, size: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def bare_runner(backbone: TimmBackbone, batch_size: int):
    """What a user would write: PIL decode, timm's eval transform, batched forward; the suite's model and autocast."""
    model, device = backbone.pooled_model(), backbone.device
    transform = timm.data.create_transform(**backbone.data_config(), is_training=False)
    dtype = resolve_precision(backbone.config["precision"], device)

    def run(paths):
        with torch.inference_mode(), autocast(device, dtype):
            for i in range(0, len(paths), batch_size):
                x = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths[i:i + batch_size]])
                model(x.to(device)).float().cpu()
    return run


def open_clip_bare_runner(backbone: OpenClipBackbone, batch_size: int):
    """What an open_clip user would write: PIL decode, open_clip's eval transform, ``encode_image``."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    backbone.pooled_model()
    model, device = backbone._clip, backbone.device
    transform = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
    dtype = resolve_precision(backbone.config["precision"], device)

    def run(paths):
        with torch.inference_mode(), autocast(device, dtype):
            for i in range(0, len(paths), batch_size):
                x = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths[i:i + batch_size]])
                model.encode_image(x.to(device)).float().cpu()
    return run


def suite_runner(backbone: TimmBackbone, batch_size: int):
    def run(paths):
        embed_paths(backbone, paths, cache=None, progress=False)
    return run


def limit_runner(backbone: TimmBackbone, batch_size: int):
    """The forward alone: preprocessed batches made once, already on the device."""
    crop = backbone.preprocessing()["crop"]
    ready: dict[int, torch.Tensor] = {}

    def run(paths):
        sizes = [min(batch_size, len(paths) - i) for i in range(0, len(paths), batch_size)]
        for size in set(sizes) - set(ready):
            ready[size] = torch.randn(size, 3, crop, crop, device=backbone.device)
        backbone.features(ready[size] for size in sizes)
    return run


def rates(runners: dict, paths: list[str], batch_size: int, repeats: int) -> dict[str, float]:
    """Median images/s of each runner; runs are interleaved so drifts in machine load hit all alike."""
    for run in runners.values():
        run(paths[:batch_size])  # warm-up: builds the model, loads the weights
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            run(paths)
            times[name].append(time.perf_counter() - start)
    return {name: len(paths) / float(np.median(t)) for name, t in times.items()}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-size", action="store_true", help="DINOv2 ViT-B/14 at 518 px on 448 px JPEGs")
    parser.add_argument("--backbone", default="timm", choices=["timm", "open-clip"])
    parser.add_argument("--model", help=f"timm model (default {DEFAULTS['model']}), or open_clip architecture "
                                        "(default ViT-B-16) or repo folder")
    parser.add_argument("--weights", default="random", help="random (offline), pretrained, or a local file")
    parser.add_argument("--n", type=int, help="number of images")
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--device")
    parser.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument("--num-workers", type=int)
    parser.add_argument("--jpeg-decoder", default="pil", choices=["pil", "nvjpeg"])
    parser.add_argument("--repeats", type=int, help="interleaved timed runs; medians are reported")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None, help="also time TTA (10 views)")
    args = parser.parse_args()
    if args.backbone == "open-clip" and args.model is None:
        args.model = "ViT-B-16"
    for key, value in (FULL_SIZE if args.full_size else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    common = dict(model=args.model, weights=args.weights, batch_size=args.batch_size, device=args.device,
                  num_workers=args.num_workers, precision=args.precision, jpeg_decoder=args.jpeg_decoder)
    kind, bare = (OpenClipBackbone, open_clip_bare_runner) if args.backbone == "open-clip" else (TimmBackbone, bare_runner)
    if kind is OpenClipBackbone and Path(args.model).is_dir():
        common.pop("weights")  # a repo folder holds its weights
    suite = kind(**common)
    runners = {"bare": bare(suite, args.batch_size), "suite": suite_runner(suite, args.batch_size),
               "limit": limit_runner(suite, args.batch_size)}
    if args.tta:
        runners["tta"] = suite_runner(kind(tta=True, **common), args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), args.n, args.image_size)
        measured = rates(runners, paths, args.batch_size, args.repeats)
    prep = suite.preprocessing()
    print(f"backbone={args.backbone} model={args.model} device={device} precision={suite.identity.artefacts['precision']} "
          f"input={prep['crop']}px images={args.n}x{args.image_size}px batch_size={args.batch_size} "
          f"num_workers={args.num_workers} jpeg_decoder={args.jpeg_decoder} repeats={args.repeats} (medians)")
    for name, rate in measured.items():
        print(f"{name}_images_per_s={rate:.2f}")
    if "tta" in measured:
        print(f"tta_cost_per_image={measured['suite'] / measured['tta']:.2f}x single view (goal <= 10.5)")
    print(f"limit_ratio={measured['suite'] / measured['limit']:.3f}")
    print(f"ratio={measured['suite'] / measured['bare']:.3f}")


if __name__ == "__main__":
    main()
