"""Classical photometric and geometric oversampling (flips, rotations, crops, colour jitter)."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import pandas as pd
from PIL import Image
from pydantic import Field
from skinbench.sdk import (
    assign_sources,
    atomic_write,
    augmentation_key,
    Augmenter,
    file_digest,
    hookimpl,
    load_rgb,
    synthetic_counts,
    Task,
)

from ._params import OversamplingParams, pair_of

if TYPE_CHECKING:
    from torchvision.transforms import v2


def rotation_padding(height: int, width: int) -> tuple[int, int]:
    """(left/right, top/bottom) reflect padding that keeps a centre crop of the original size inside the
    image after any rotation: the crop's corners stay within half its diagonal of the centre."""
    diagonal = math.hypot(height, width)
    return math.ceil((diagonal - width) / 2) + 1, math.ceil((diagonal - height) / 2) + 1


class ClassicalAugmenter(Augmenter):
    """Oversamples each (task, class) bucket with torchvision transforms; +80% by default (thesis §4.2).

    Rotations turn a reflect-padded copy and crop the original size back out of it, so corners hold
    mirrored skin instead of black wedges."""

    name = "classical"

    class Params(OversamplingParams):
        rotation: Annotated[float, Field(ge=0, le=180)] = Field(20.0, description="up to +/- this many degrees")
        crop_scale: pair_of(Annotated[float, Field(gt=0, le=1)]) = Field(
            [0.8, 1.0], description="RandomResizedCrop area range, as a share of the image")
        brightness: Annotated[float, Field(ge=0)] = 0.15
        contrast: Annotated[float, Field(ge=0)] = 0.15
        saturation: Annotated[float, Field(ge=0)] = 0.1
        hue: Annotated[float, Field(ge=0, le=0.5)] = 0.02

    runtime_params = frozenset()
    selection_params = frozenset({"policy", "amount", "min_support"})
    meta = {"license": "Apache-2.0"}

    def transform(self, size: tuple[int, int]) -> v2.Compose:
        """The random transform for an image of ``size`` (height, width); its output has the same size."""
        from torchvision.transforms import v2

        c = self.config
        return v2.Compose([
            v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
            v2.Pad(rotation_padding(*size), padding_mode="reflect"),
            v2.RandomRotation(c["rotation"]),
            v2.CenterCrop(size),
            v2.RandomResizedCrop(size, scale=tuple(c["crop_scale"]), antialias=True),
            v2.ColorJitter(c["brightness"], c["contrast"], c["saturation"], c["hue"]),
        ])

    def augment(self, train: pd.DataFrame, task: Task, seed: int, workdir: Path) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        counts = synthetic_counts(train["label"].tolist(), self.config["policy"], self.config["amount"],
                                  self.config["min_support"])
        sources = assign_sources(train["label"].tolist(), counts, rng)
        folder = Path(workdir) / self.name
        folder.mkdir(parents=True, exist_ok=True)
        rows, uses = [], Counter()
        for row_i in sources:
            row = train.iloc[row_i]
            digest = file_digest(row["image"])
            # the k-th image made from a source: the same whatever the amount, so more images reuse these
            key = augmentation_key(self, source=digest, seed=seed, index=uses[digest])
            uses[digest] += 1
            target = folder / f"{key}.png"
            if not target.exists():
                self.render(row["image"], target, key)
            rows.append({**row.to_dict(), "image": str(target), "source": row["image"], "synthetic": True})
        return pd.DataFrame(rows, columns=[*train.columns, "source", "synthetic"]) if rows else train.iloc[0:0]

    def render(self, source: str, target: Path, key: str) -> None:
        import torch

        image = load_rgb(source)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(key[:8], 16))  # the same (source, params, seed, index) -> the same image
            out: Image.Image = self.transform((image.height, image.width))(image)
        atomic_write(target, lambda fh: out.save(fh, format="PNG"))


@hookimpl
def skinbench_augmenters():
    return [ClassicalAugmenter]
