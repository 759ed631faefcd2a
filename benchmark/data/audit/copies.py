"""A dataset that leaks through near-duplicates, for the tests and ``benchmarks/near_duplicate_leakage.py``.

The demo simulator's patches of one feature with the labels permuted in patient blocks (every patient takes
another patient's labels, so the images carry no signal about them), plus a copy of every image with one
pixel changed (or JPEG-re-encoded, or cropped) under a new patient id. Only a split that puts a copy of a
test image into training can score above chance on it; joining near-duplicates must bring it back to chance.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

TRANSFORMS = ("pixel", "jpeg90", "crop95")
"""One pixel inverted; JPEG re-encoding at quality 90; a centred crop keeping 95% of the area."""


def altered(image: Image.Image, transform: str) -> Image.Image:
    """A near-duplicate of ``image``: see :data:`TRANSFORMS`."""
    image = image.convert("RGB")
    if transform == "pixel":
        pixels = np.array(image)
        pixels[0, 0] = 255 - pixels[0, 0]
        return Image.fromarray(pixels)
    if transform == "jpeg90":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")
    if transform == "crop95":
        width, height = image.size
        dx, dy = round(width * (1 - 0.95 ** 0.5) / 2), round(height * (1 - 0.95 ** 0.5) / 2)
        return image.crop((dx, dy, width - dx, height - dy))
    raise ValueError(f"unknown transform {transform!r}; choose one of {TRANSFORMS}")


def leaky_copies(folder: str | Path, n_patients: int = 40, image_size: int = 64, feature: str = "hyperpigmentation",
                 seed: int = 0, transform: str = "pixel", copies: bool = True) -> Path:
    """Write ``leaky.csv`` (columns image, patient_id, label) and its PNGs into ``folder``; return the CSV path.

    Read it with the ``generic-csv`` dataset (``label_columns: [label]``). Copies get patient ids ``C###``."""
    from skinbench.datasets.demo import DemoDataset

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    task = next(t for t in DemoDataset(n_patients=n_patients, image_size=image_size, seed=seed).tasks()
                if t.name == feature)
    samples = task.samples.assign(group=task.samples["group"].astype(str))
    patients = sorted(samples["group"].unique())
    donor = dict(zip(patients, np.random.default_rng(seed).permutation(patients)))
    labels = {(g, r): label for g, r, label in zip(samples["group"], samples["region"], samples["label"])}
    rows = []
    for sample in samples.itertuples(index=False):
        label = labels.get((donor[sample.group], sample.region), sample.label)  # the donor's label of this region
        name = f"images/{sample.group}_{sample.region}.png"
        with Image.open(sample.image) as image:
            image.convert("RGB").save(folder / name)
            rows.append({"image": name, "patient_id": sample.group, "label": label})
            if copies:
                copy = f"images/C{sample.group[1:]}_{sample.region}_{transform}.png"
                altered(image, transform).save(folder / copy)
                rows.append({"image": copy, "patient_id": f"C{sample.group[1:]}", "label": label})
    csv = folder / "leaky.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv
