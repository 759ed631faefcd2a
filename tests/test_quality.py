"""Quality-control metrics for synthetic images (seed 000 section 4.2)."""
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from skinbench.quality import LpipsScorer, blur_ratio, specular_coverage, ssim, trunk_weights_file


@pytest.fixture(scope="module")
def texture():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)


def test_ssim_of_identical_images_is_one_and_drops_for_a_different_image(texture):
    assert ssim(texture, texture) == pytest.approx(1.0)
    assert ssim(texture, 255 - texture) < 0.5


def test_blur_ratio_is_below_one_for_a_blurred_copy_and_one_for_itself(texture):
    blurred = gaussian_filter(texture.astype(float), sigma=(1.5, 1.5, 0)).round().astype(np.uint8)
    assert blur_ratio(texture, texture) == pytest.approx(1.0)
    assert blur_ratio(blurred, texture) < 0.5
    assert math.isnan(blur_ratio(texture, np.full_like(texture, 128)))  # flat reference: undefined


def test_specular_coverage_counts_bright_blue_pixels_of_a_known_mask():
    image = np.full((10, 10, 3), (120, 100, 90), np.uint8)  # skin-like, not blue
    image[:3, :5] = (60, 70, 200)    # 15 px: blue-dominant and bright -> specular
    image[5:, :2] = (10, 10, 40)     # 10 px: blue-dominant but dark (max 40 <= tau_v 80) -> not
    image[8:, 5:] = (120, 120, 130)  # 10 px: bright but blue margin 10 <= delta_b 15 -> not
    assert specular_coverage(image) == pytest.approx(0.15)


def test_lpips_with_a_random_trunk_is_zero_for_identical_images(texture):
    scorer = LpipsScorer("alex", pretrained_trunk=False)
    assert scorer(texture, texture) == pytest.approx(0.0, abs=1e-7)
    assert scorer(texture, 255 - texture) > 0


def test_lpips_without_trunk_weights_warns_once_and_returns_nan(texture, tmp_path):
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))  # an empty hub cache: the AlexNet weights are absent
    try:
        assert not trunk_weights_file("alex").exists()
        scorer = LpipsScorer("alex")
        with pytest.warns(UserWarning, match="LPIPS disabled"):
            assert math.isnan(scorer(texture, texture))
        with warnings.catch_warnings(record=True) as later:
            warnings.simplefilter("always")
            assert math.isnan(scorer(texture, texture))
        assert later == []  # said once per scorer, not per image
        assert not scorer.available
    finally:
        torch.hub.set_dir(previous)


def test_lpips_rejects_an_unknown_network():
    with pytest.raises(ValueError, match="unknown LPIPS net 'resnet'"):
        LpipsScorer("resnet")
