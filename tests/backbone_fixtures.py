"""Tiny images and tiny timm weight files for the backbone, cache and embedding tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from safetensors.torch import save_file


def write_images(folder: Path, n: int, size: tuple[int, int] = (40, 48), seed: int = 0) -> list[str]:
    """``n`` distinct random RGB PNGs; returns their paths as strings."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def tiny_timm_weights(folder: Path, arch: str = "test_vit", seed: int = 1) -> tuple[Path, torch.nn.Module]:
    """A random-init tiny timm model saved as safetensors, and the model itself (eval mode)."""
    torch.manual_seed(seed)
    model = timm.create_model(arch, num_classes=0).eval()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{arch}-{seed}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path, model


SMALL = {"crop": 32, "resize": 36}
"""Preprocessing overrides that keep tiny models fast."""


def tolerance(backbone) -> dict[str, float]:
    """``assert_allclose`` tolerances for a backbone's embeddings against a CPU fp32 reference, set by
    the device type and precision it actually uses: bf16/fp16 autocast on CUDA differs by ~1e-2, and
    fp32 on CUDA by TF32 convolutions and GPU resizing (pixels within 2 levels of the CPU's)."""
    artefacts = backbone.identity.artefacts
    if artefacts["precision"] != "float32":
        return {"rtol": 5e-2, "atol": 1e-1}
    if artefacts["device_type"] != "cpu":
        return {"rtol": 1e-3, "atol": 2e-2}
    return {"rtol": 1e-5, "atol": 1e-5}
