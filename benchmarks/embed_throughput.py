"""Images/s of skinbench's embedding pipeline against a bare timm loop on the same model and images.

The bare loop is what a user would write: decode with PIL, timm's eval transform, batched forward
under ``torch.inference_mode``. The suite side is ``skinbench.embedding.embed_paths`` without a cache
(so it also hashes every file). Prints both rates, the TTA cost per image relative to one view, and
as its LAST line ``ratio=<suite/bare>``. Random init by default, so it runs offline.

    python benchmarks/embed_throughput.py --model resnet18 --n 96 --batch-size 32 --device cpu
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

from skinbench.devices import resolve_device
from skinbench.embedding import embed_paths
from skinbench.plugins.backbones.timm_models import TimmBackbone


def write_images(folder: Path, n: int, size: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def bare_runner(model_name: str, batch_size: int, device: torch.device):
    """What a user would write: PIL decode, timm's eval transform, batched forward."""
    torch.manual_seed(0)
    model = timm.create_model(model_name, pretrained=False, num_classes=0).eval().to(device)
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model), is_training=False)

    def run(paths):
        with torch.inference_mode():
            for i in range(0, len(paths), batch_size):
                x = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths[i:i + batch_size]])
                model(x.to(device)).cpu()
    return run


def suite_runner(backbone: TimmBackbone, batch_size: int):
    def run(paths):
        embed_paths(backbone, paths, cache=None, batch_size=batch_size, progress=False)
    return run


def rates(runners: dict, paths: list[str], batch_size: int, repeats: int) -> dict[str, float]:
    """Median images/s of each runner; runs are interleaved so drifts in machine load hit all alike."""
    for run in runners.values():
        run(paths[:batch_size])  # warm-up: builds the model, loads the weights
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run(paths)
            times[name].append(time.perf_counter() - start)
    return {name: len(paths) / float(np.median(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--weights", default="random", help="random (offline), pretrained, or a local file")
    parser.add_argument("--n", type=int, default=96, help="number of images")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed runs; medians are reported")
    args = parser.parse_args()
    device = resolve_device(args.device)
    common = dict(model=args.model, weights=args.weights, batch_size=args.batch_size, device=args.device,
                  num_workers=args.num_workers, precision="fp32")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), args.n, args.image_size)
        measured = rates({"bare": bare_runner(args.model, args.batch_size, device),
                          "suite": suite_runner(TimmBackbone(**common), args.batch_size),
                          "tta": suite_runner(TimmBackbone(tta=True, **common), args.batch_size)},
                         paths, args.batch_size, args.repeats)
    bare, suite, tta = measured["bare"], measured["suite"], measured["tta"]
    print(f"model={args.model} device={device} batch_size={args.batch_size} images={args.n} repeats={args.repeats} (medians)")
    print(f"bare_timm_images_per_s={bare:.2f}")
    print(f"suite_images_per_s={suite:.2f}")
    print(f"suite_tta_images_per_s={tta:.2f}")
    print(f"tta_cost_per_image={suite / tta:.2f}x single view (goal <= 10.5)")
    print(f"ratio={suite / bare:.3f}")


if __name__ == "__main__":
    main()
