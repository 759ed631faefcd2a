"""Quality-control metrics for synthetic images (thesis section 4.2): batched torch against the references.

The references are the libraries the metrics were computed with before they moved to torch:
scikit-image's SSIM, scipy's Laplacian, the ``lpips`` package pair by pair, numpy for the mask.
"""
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter, laplace
from skimage.metrics import structural_similarity

from skinbench.quality import (
    QUALITY_COLUMNS,
    LpipsScorer,
    blur_ratio,
    quality_metrics,
    specular_coverage,
    ssim,
    trunk_weights_file,
)
from skinbench.quality_control import QualityThresholds, qc_failures


def batch(*images: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 arrays as one (B, 3, H, W) uint8 tensor."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)


@pytest.fixture(scope="module")
def pairs():
    """Synthetic/real pairs of different kinds: noise vs noise, a blurred copy, an inverted copy, a near-copy."""
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, size=(4, 40, 48, 3), dtype=np.uint8)
    blurred = gaussian_filter(real[1].astype(float), sigma=(1.5, 1.5, 0)).round().astype(np.uint8)
    near = np.clip(real[3].astype(int) + rng.integers(-8, 9, real[3].shape), 0, 255).astype(np.uint8)
    fake = np.stack([rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8), blurred, 255 - real[2], near])
    return fake, real


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    side = min(a.shape[:2])
    window = min(7, side if side % 2 else side - 1)
    return structural_similarity(a.astype(np.float64), b.astype(np.float64), channel_axis=-1, data_range=255.0,
                                 win_size=window)


def reference_blur_ratio(fake: np.ndarray, real: np.ndarray) -> float:
    def variance(rgb):
        return laplace(rgb.astype(np.float64).mean(-1)).var()
    return variance(fake) / variance(real)


def test_batched_ssim_equals_scikit_image_per_pair(pairs):
    fake, real = pairs
    expected = [reference_ssim(f, r) for f, r in zip(fake, real)]
    np.testing.assert_allclose(ssim(batch(*fake), batch(*real)).numpy(), expected, rtol=1e-9, atol=1e-12)
    assert ssim(batch(*real), batch(*real)).numpy() == pytest.approx([1.0] * 4)


@pytest.mark.parametrize("shape", [(5, 9), (6, 6), (3, 30)])
def test_ssim_shrinks_its_window_on_tiny_images_as_scikit_image_does(shape):
    rng = np.random.default_rng(1)
    a, b = (rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(2))
    assert float(ssim(batch(a), batch(b))[0]) == pytest.approx(reference_ssim(a, b), rel=1e-9)


def test_batched_blur_ratio_equals_scipy_laplace_per_pair(pairs):
    fake, real = pairs
    got = blur_ratio(batch(*fake), batch(*real)).numpy()
    np.testing.assert_allclose(got, [reference_blur_ratio(f, r) for f, r in zip(fake, real)], rtol=1e-9)
    assert got[1] < 0.5  # the blurred copy is smoother
    flat = np.full_like(real[0], 128)
    assert math.isnan(float(blur_ratio(batch(fake[0]), batch(flat))[0]))  # flat reference: undefined


def test_specular_coverage_counts_bright_blue_pixels_of_a_known_mask():
    image = np.full((10, 10, 3), (120, 100, 90), np.uint8)  # skin-like, not blue
    image[:3, :5] = (60, 70, 200)    # 15 px: blue-dominant and bright -> specular
    image[5:, :2] = (10, 10, 40)     # 10 px: blue-dominant but dark (max 40 <= tau_v 80) -> not
    image[8:, 5:] = (120, 120, 130)  # 10 px: bright but blue margin 10 <= delta_b 15 -> not
    assert specular_coverage(image) == pytest.approx(0.15)
    assert specular_coverage(batch(image, 255 - image)).numpy() == pytest.approx([0.15, 0.0])


def test_lpips_batch_equals_pair_by_pair_and_is_zero_for_identical_images(pairs):
    fake, real = pairs
    scorer = LpipsScorer("alex", pretrained_trunk=False)
    one_by_one = [scorer(f, r) for f, r in zip(fake, real)]
    np.testing.assert_allclose(scorer.distances(batch(*fake), batch(*real)).numpy(), one_by_one, rtol=1e-5)
    assert scorer(real[0], real[0]) == pytest.approx(0.0, abs=1e-7)
    assert min(one_by_one) > 0


def test_quality_metrics_gives_every_column_in_one_call(pairs):
    fake, real = pairs
    scorer = LpipsScorer("alex", pretrained_trunk=False)
    table = quality_metrics(batch(*fake).float(), batch(*real), scorer)
    assert table.shape == (4, len(QUALITY_COLUMNS)) and table.dtype == torch.float64
    columns = dict(zip(QUALITY_COLUMNS, table.T.numpy()))
    np.testing.assert_allclose(columns["ssim"], [reference_ssim(f, r) for f, r in zip(fake, real)], rtol=1e-9)
    np.testing.assert_allclose(columns["lpips"], scorer.distances(batch(*fake), batch(*real)).numpy(), rtol=1e-5)
    assert np.isnan(quality_metrics(batch(*fake), batch(*real))[:, 0].numpy()).all()  # no scorer: LPIPS is NaN


def test_lpips_without_trunk_weights_warns_once_and_returns_nan(pairs, tmp_path):
    image = pairs[1][0]
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))  # an empty hub cache: the AlexNet weights are absent
    try:
        assert not trunk_weights_file("alex").exists()
        scorer = LpipsScorer("alex")
        with pytest.warns(UserWarning, match="LPIPS disabled"):
            assert math.isnan(scorer(image, image))
        with warnings.catch_warnings(record=True) as later:
            warnings.simplefilter("always")
            assert math.isnan(scorer(image, image))
        assert later == []  # said once per scorer, not per image
        assert not scorer.available
    finally:
        torch.hub.set_dir(previous)


def test_lpips_rejects_an_unknown_network():
    with pytest.raises(ValueError, match="unknown LPIPS net 'resnet'"):
        LpipsScorer("resnet")


def test_thresholds_name_what_an_image_misses_and_ignore_nan():
    thresholds = QualityThresholds(max_lpips=0.5, min_blur_ratio=0.5, min_ssim=0.2).model_dump()
    good = {"lpips": 0.1, "blur_ratio": 0.9, "ssim": 0.4, "specular_coverage": 0.05}
    assert qc_failures(thresholds, good) == []
    bad = {"lpips": 0.7, "blur_ratio": 0.2, "ssim": 0.1, "specular_coverage": 0.3}
    assert qc_failures(thresholds, bad, specular_range=[0.0, 0.1]) == ["max_lpips", "min_blur_ratio", "min_ssim",
                                                                       "specular_range"]
    assert qc_failures(thresholds, {**good, "lpips": math.nan}) == []  # not computable: not a failure
