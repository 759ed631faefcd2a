"""Tensor preprocessing (on the model's device, in batches) against the PIL pipeline it replaces.

The reference is timm's eval transform on PIL images, which every torch backbone used before.
Pixels may differ by ``PIL_TOLERANCE_LEVELS`` uint8 levels after bilinear or bicubic resizing
(float rounding against PIL's fixed-point arithmetic); nearest is exact. The GPU path
(``separable_resize``) is checked here on the CPU.
"""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from skinbench.images import rgb_tensor
from skinbench.preprocess import (
    PIL_TOLERANCE_LEVELS,
    Preprocess,
    resize_like_pil,
    resized_size,
    separable_resize,
)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SHAPES = [(40, 48), (64, 64), (97, 255), (300, 120)]
"""(height, width): down- and upsampling, square and both orientations."""


def texture(shape: tuple[int, int], seed: int) -> Image.Image:
    """Noise (the worst case for interpolation differences) blended with a smooth gradient."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, shape[1])[None, :, None]
    pixels = 0.5 * rng.integers(0, 256, (*shape, 3)) + 0.5 * ramp
    return Image.fromarray(pixels.astype(np.uint8))


def timm_reference(image: Image.Image, resize: int, crop: int, interpolation: str) -> torch.Tensor:
    transform = timm.data.create_transform(input_size=(3, crop, crop), interpolation=interpolation, mean=MEAN, std=STD,
                                           crop_pct=crop / resize, is_training=False)
    return transform(image)


def in_levels(normalised: torch.Tensor) -> torch.Tensor:
    """Undo the normalisation: uint8 levels, so differences read as pixel values."""
    return normalised * torch.tensor(STD).view(-1, 1, 1) * 255


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear", "nearest"])
@pytest.mark.parametrize("shape", SHAPES)
def test_preprocessing_equals_timms_pil_transform_within_the_documented_tolerance(shape, interpolation):
    image = texture(shape, seed=sum(shape))
    resize, crop = 36, 32
    got = Preprocess(resize, crop, interpolation, MEAN, STD, tta=False)(rgb_tensor(image))
    expected = timm_reference(image, resize, crop, interpolation)
    assert got.shape == expected.shape == (3, crop, crop) and got.dtype == torch.float32
    diff = (in_levels(got) - in_levels(expected)).abs()
    if interpolation == "nearest":
        assert diff.max() < 1e-3  # PIL's index rule is reproduced exactly
    else:
        assert diff.max() <= PIL_TOLERANCE_LEVELS + 1e-3
        assert (diff > 1.5).float().mean() < 0.01  # most differences are one level


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
@pytest.mark.parametrize("shape", SHAPES)
def test_the_gpu_resize_path_matches_pil_within_the_same_tolerance(shape, interpolation):
    image = texture(shape, seed=3)
    size = resized_size(*shape, 36)
    expected = np.asarray(TF.resize(image, 36, interpolation=InterpolationMode(interpolation))).astype(int)
    got = separable_resize(rgb_tensor(image)[None], size, interpolation)[0].permute(1, 2, 0).numpy().astype(int)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= PIL_TOLERANCE_LEVELS
    # a single float pass (no rounding between passes) would be far off on this texture
    single = torch.nn.functional.interpolate(rgb_tensor(image)[None].float(), size=size, mode=interpolation,
                                             antialias=True, align_corners=False).clamp(0, 255).round()
    assert np.abs(single[0].permute(1, 2, 0).numpy() - expected).max() >= np.abs(got - expected).max()


def test_tta_views_are_cropped_from_one_resized_image_like_pils_five_crop():
    image = texture((50, 60), seed=4)
    views = Preprocess(40, 32, "bicubic", MEAN, STD, tta=True)(image)
    resized = TF.resize(image, 40, interpolation=InterpolationMode.BICUBIC)
    crops = torch.stack([TF.normalize(TF.to_tensor(c), MEAN, STD) for c in TF.five_crop(resized, 32)])
    expected = torch.cat([crops, crops.flip(-1)])
    assert views.shape == (10, 3, 32, 32)
    assert (in_levels(views) - in_levels(expected)).abs().max() <= PIL_TOLERANCE_LEVELS + 1e-3
    torch.testing.assert_close(views[5], views[0].flip(-1))


def test_a_list_of_mixed_sizes_equals_each_image_on_its_own():
    images = [rgb_tensor(texture(shape, seed=i)) for i, shape in enumerate([(40, 48), (64, 64), (40, 48)])]
    preprocess = Preprocess(36, 32, "bicubic", MEAN, STD, tta=False)
    together = preprocess.batch(images)
    assert together.shape == (3, 3, 32, 32)
    for image, row in zip(images, together):
        torch.testing.assert_close(row, preprocess(image), rtol=0, atol=0)


def test_an_image_already_at_the_target_size_is_not_resampled():
    pixels = rgb_tensor(texture((36, 36), seed=5))[None]
    assert resize_like_pil(pixels, (36, 36), "bicubic") is pixels


def test_the_device_path_embeds_as_the_worker_path(monkeypatch, tmp_path):
    """On CUDA, workers only decode and the batch is preprocessed where the model runs; forced here on
    the CPU (mixed image sizes, so batches arrive both stacked and as lists)."""
    from backbone_fixtures import SMALL, tiny_timm_weights
    from skinbench.plugins.backbones.timm_models import TimmBackbone

    weights, _ = tiny_timm_weights(tmp_path / "w")
    paths = []
    for i, shape in enumerate([(40, 48), (40, 48), (52, 44), (40, 48), (36, 60)]):
        paths.append(str(tmp_path / f"{i}.png"))
        texture(shape, seed=i).save(paths[-1])
    params = dict(model="test_vit", weights=str(weights), batch_size=2, num_workers=1, device="cpu", **SMALL)
    in_workers = {tta: TimmBackbone(tta=tta, **params).embed_paths(paths) for tta in (False, True)}
    monkeypatch.setattr(TimmBackbone, "_preprocesses_on_device", lambda self: True)
    for tta in (False, True):
        np.testing.assert_allclose(TimmBackbone(tta=tta, **params).embed_paths(paths), in_workers[tta],
                                   rtol=1e-5, atol=1e-5)


def test_jpeg_bytes_decode_to_the_pixels_pil_decodes(tmp_path):
    """The nvjpeg path's plumbing, with torchvision's CPU JPEG decoder standing in for the GPU's."""
    from skinbench.images import jpeg_bytes, load_uint8
    from skinbench.sdk import TorchBackbone

    jpeg, png = tmp_path / "a.jpg", tmp_path / "b.png"
    texture((40, 48), seed=1).save(jpeg, quality=95)
    texture((30, 30), seed=2).save(png)
    assert jpeg_bytes(png) is None and jpeg_bytes(jpeg).ndim == 1
    decoded = TorchBackbone._decoded_on(torch.device("cpu"), [jpeg_bytes(jpeg), load_uint8(png)])
    assert torch.equal(decoded[1], load_uint8(png))
    assert (decoded[0].int() - load_uint8(jpeg).int()).abs().max() <= 2  # libjpeg builds may round apart
