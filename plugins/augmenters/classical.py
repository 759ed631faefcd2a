"""Classical photometric and geometric oversampling (flips, rotations, crops, colour jitter)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchvision.transforms import v2

from skinbench.api import Augmenter, Task
from skinbench.atomic import atomic_write
from skinbench.hashing import config_hash, file_digest
from skinbench.hookspecs import hookimpl
from skinbench.images import load_rgb
from skinbench.oversampling import assign_sources, synthetic_counts


class ClassicalAugmenter(Augmenter):
    """Oversamples each (task, class) bucket with torchvision transforms; +80% by default (seed 000 §4.2)."""

    name = "classical"
    params = {"policy": "proportional", "amount": 0.8, "min_support": 5, "rotation": 20, "crop_scale": [0.8, 1.0],
              "brightness": 0.15, "contrast": 0.15, "saturation": 0.1, "hue": 0.02}
    meta = {"license": "Apache-2.0"}

    def transform(self, size: tuple[int, int]) -> v2.Compose:
        c = self.config
        return v2.Compose([
            v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
            v2.RandomRotation(c["rotation"]),
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
        rows = []
        for index, row_i in enumerate(sources):
            row = train.iloc[row_i]
            key = config_hash({"source": file_digest(row["image"]), "augmenter": self.identity.digest,
                               "seed": seed, "index": index})
            target = folder / f"{key}.png"
            if not target.exists():
                self.render(row["image"], target, key)
            rows.append({**row.to_dict(), "image": str(target), "source": row["image"], "synthetic": True})
        return pd.DataFrame(rows, columns=[*train.columns, "source", "synthetic"]) if rows else train.iloc[0:0]

    def render(self, source: str, target: Path, key: str) -> None:
        image = load_rgb(source)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(key[:8], 16))  # the same (source, params, seed, index) -> the same image
            out = self.transform((image.height, image.width))(image)
        atomic_write(target, lambda fh: out.save(fh, format="PNG"))


@hookimpl
def skinbench_augmenters():
    return [ClassicalAugmenter]
