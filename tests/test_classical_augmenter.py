"""The classical augmenter: reproducible images of the source's size, rotated without black corners."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinbench.api import ConfigError, Task
from skinbench.plugins.augmenters.classical import ClassicalAugmenter


@pytest.fixture
def train(tmp_path) -> pd.DataFrame:
    """Bright skin-like textures (no channel below 100): any black pixel comes from the augmenter."""
    rng = np.random.default_rng(0)
    rows = []
    for i, shape in enumerate([(40, 64), (64, 40), (48, 48), (40, 64)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(100, 256, (*shape, 3), dtype=np.uint8)).save(path)
        rows.append({"image": str(path), "label": i % 2, "group": f"p{i}"})
    return pd.DataFrame(rows)


def border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


@pytest.mark.parametrize("rotation", [20.0, 45.0, 180.0])
def test_rotated_images_have_no_black_border(rotation, train, tmp_path):
    out = ClassicalAugmenter(rotation=rotation, policy="per_image", amount=3, brightness=0.0).augment(
        train, Task("d", "texture", [0, 1], train), 0, tmp_path / "out")
    assert len(out) == 12
    for row in out.itertuples():
        image = np.asarray(Image.open(row.image).convert("RGB"))
        assert image.shape == np.asarray(Image.open(row.source)).shape  # the source's size, orientation kept
        # a black wedge would leave pixels near 0 on the border; reflected skin stays bright
        assert border(image).max(-1).min() > 60, f"dark border pixels in {row.image}"


def test_the_same_seed_gives_the_same_images(train, tmp_path):
    task = Task("d", "texture", [0, 1], train)
    first = ClassicalAugmenter(rotation=45.0).augment(train, task, 3, tmp_path / "a")
    again = ClassicalAugmenter(rotation=45.0).augment(train, task, 3, tmp_path / "b")
    for a, b in zip(first["image"], again["image"]):
        np.testing.assert_array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def test_parameters_are_typed_with_ranges():
    with pytest.raises(ConfigError, match=r"augmenter 'classical': 'crop_scale': value error, range \[0.9, 0.5\]"):
        ClassicalAugmenter(crop_scale=[0.9, 0.5])
    with pytest.raises(ConfigError, match=r"'rotation': input should be less than or equal to 180"):
        ClassicalAugmenter(rotation=270.0)
    with pytest.raises(ConfigError, match=r"'policy': input should be 'proportional', 'balance' or 'per_image'"):
        ClassicalAugmenter(policy="smote")


def test_more_images_per_class_reuse_the_images_already_made(train, tmp_path):
    task = Task("d", "texture", [0, 1], train)
    few = ClassicalAugmenter(policy="per_image", amount=1).augment(train, task, 0, tmp_path / "out")
    more_plugin = ClassicalAugmenter(policy="per_image", amount=2)
    more = more_plugin.augment(train, task, 0, tmp_path / "out")
    assert more_plugin.identity.digest != ClassicalAugmenter(policy="per_image", amount=1).identity.digest
    assert set(few["image"]) < set(more["image"])  # amount selects how many; an image keeps its cache entry
