"""The Stable Diffusion augmenters, run for real on a tiny random-init pipeline (offline, CPU)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skinbench.api import ConfigError, Task
from skinbench.oversampling import synthetic_counts
from skinbench.plugins.augmenters import _stable_diffusion as sd
from skinbench.plugins.augmenters._sd_prompts import PromptBook
from skinbench.plugins.augmenters.sd_img2img import StableDiffusionImg2Img
from skinbench.plugins.augmenters.sd_inpaint import (
    StableDiffusionInpaint,
    rectangle_mask,
)
from skinbench.plugins.augmenters.sd_text2img import StableDiffusionText2Img
from tiny_sd import model, one_thread  # noqa: F401 - module fixtures shared by the SD tests
from transformers import CLIPTokenizer

TINY = {"resolution": 32, "steps": [4, 5], "strength": [0.25, 0.35], "progress": False, "lpips_net": None,
        "device": "cpu"}
"""Pinned to the CPU: pixel-equality checks need deterministic kernels (CUDA convolutions need not be)."""
LOG_COLUMNS = {
    "image", "label", "group", "source", "synthetic", "task", "mode", "model", "prompt", "negative_prompt",
    "prompt_used", "negative_prompt_used", "scheduler", "strength", "guidance_scale", "steps", "clahe",
    "resolution", "run_seed", "image_seed", "source_index", "cache_key", "lpips", "blur_ratio", "ssim",
    "specular_coverage", "kept", "qc_failed",
}


pytestmark = pytest.mark.usefixtures("one_thread")


def write_train(folder: Path, labels: list, seed: int = 0) -> pd.DataFrame:
    """Random-texture PNGs, two per patient, with the given labels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i, label in enumerate(labels):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)).save(path)
        rows.append({"image": str(path), "label": label, "group": f"patient{i // 2}", "region": "cheek"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def train(tmp_path_factory) -> pd.DataFrame:
    return write_train(tmp_path_factory.mktemp("train"), [-1, 0, 1, 0, 1])


def task_of(name: str, train: pd.DataFrame, classes=(-1, 0, 1)) -> Task:
    return Task("cosmetic", name, list(classes), train)


def pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_same_seed_gives_the_same_images_and_another_seed_others(model, train, tmp_path):
    task = task_of("texture", train)
    first = StableDiffusionImg2Img(model=model, **TINY).augment(train, task, 0, tmp_path / "a")
    again = StableDiffusionImg2Img(model=model, **TINY).augment(train, task, 0, tmp_path / "b")
    other = StableDiffusionImg2Img(model=model, **TINY).augment(train, task, 1, tmp_path / "c")
    assert len(first) == sum(synthetic_counts(train["label"], "proportional", 0.8).values()) == 5
    for a, b in zip(first["image"], again["image"]):
        np.testing.assert_array_equal(pixels(a), pixels(b))
    assert list(first["image_seed"]) == list(again["image_seed"])
    assert not set(first["image_seed"]) & set(other["image_seed"])
    assert any(not np.array_equal(pixels(a), pixels(b)) for a, b in zip(first["image"], other["image"]))


def test_a_rerun_is_served_from_the_cache_without_loading_the_model(model, train, tmp_path, monkeypatch):
    task = task_of("texture", train)
    fresh = StableDiffusionImg2Img(model=model, **TINY)
    first = fresh.augment(train, task, 3, tmp_path)
    assert fresh.stats["generated"] == len(first) and fresh.stats["pipeline_calls"] == len(first)

    def no_model(*args, **kwargs):
        raise AssertionError("a cached rerun must not load the pipeline")

    monkeypatch.setattr(sd, "load_pipeline", no_model)
    rerun = StableDiffusionImg2Img(model=model, **TINY)
    second = rerun.augment(train, task, 3, tmp_path)
    assert rerun.stats["pipeline_calls"] == 0 and rerun.stats["cached"] == len(first)
    pd.testing.assert_frame_equal(first, second)


def test_log_records_provenance_prompts_settings_and_metrics(model, train, tmp_path):
    task = task_of("oiliness", train)
    out = StableDiffusionImg2Img(model=model, **TINY).augment(train, task, 0, tmp_path)
    assert LOG_COLUMNS <= set(out.columns)
    assert out["synthetic"].all() and out["kept"].all() and (out["qc_failed"] == "").all()
    assert out["task"].eq("oiliness").all() and out["mode"].eq("img2img").all()
    # oiliness: DPM-Solver multistep and CLAHE (thesis), values drawn inside the ranges
    assert out["scheduler"].eq("dpm_multistep").all() and out["clahe"].all()
    assert out["strength"].between(0.25, 0.35).all() and out["guidance_scale"].between(3.5, 5.5).all()
    assert out["steps"].between(4, 5).all()
    # the class descriptor from the prompt file, and the long negative prompt trimmed to 75 tokens
    low = out[out["label"] == -1].iloc[0]
    assert "Low oiliness; matte" in low["prompt"]
    assert "uniform blue wash" in low["negative_prompt"]
    tokenizer = CLIPTokenizer.from_pretrained(Path(model) / "tokenizer")
    assert len(tokenizer(low["negative_prompt"], add_special_tokens=False).input_ids) > 75
    assert len(tokenizer(low["negative_prompt_used"], add_special_tokens=False).input_ids) <= 75
    assert low["prompt_used"].startswith("blue")
    assert out["ssim"].between(-1, 1).all() and (out["blur_ratio"] > 0).all()
    assert out["specular_coverage"].between(0, 1).all() and out["lpips"].isna().all()
    for path in out["image"]:
        assert Path(path).is_relative_to(tmp_path) and Image.open(path).size == (32, 32)


def test_default_scheduler_is_euler_ancestral_without_clahe(model, train, tmp_path):
    out = StableDiffusionImg2Img(model=model, **TINY).augment(train, task_of("texture", train), 0, tmp_path)
    assert out["scheduler"].eq("euler_ancestral").all() and not out["clahe"].any()


def test_sources_are_training_images_and_keep_their_patient(model, train, tmp_path):
    out = StableDiffusionImg2Img(model=model, **TINY, policy="per_image", amount=1).augment(
        train, task_of("texture", train), 0, tmp_path)
    by_image = train.set_index("image")
    assert set(out["source"]) <= set(train["image"])
    assert list(out["group"]) == list(by_image.loc[out["source"], "group"])
    assert list(out["label"]) == list(by_image.loc[out["source"], "label"])
    assert list(out["region"]) == list(by_image.loc[out["source"], "region"])
    assert not set(out["image"]) & set(train["image"])


def test_thresholds_filter_on_the_logged_metrics_and_are_part_of_the_identity(model, train, tmp_path):
    task = task_of("texture", train)
    kept = StableDiffusionImg2Img(model=model, **TINY).augment(train, task, 0, tmp_path)
    strict = StableDiffusionImg2Img(model=model, **TINY, min_ssim=0.99)
    strict.stats.clear()
    filtered = strict.augment(train, task, 0, tmp_path)
    assert strict.identity.digest != StableDiffusionImg2Img(model=model, **TINY).identity.digest  # new cells
    assert list(filtered["cache_key"]) == list(kept["cache_key"])  # a threshold selects images; it makes none
    assert strict.stats["generated"] == 0
    assert kept["kept"].all() and not filtered["kept"].any()
    assert filtered["qc_failed"].eq("min_ssim").all()
    # the same seeds give the same images, hence the same metrics
    assert list(filtered["ssim"]) == list(kept["ssim"])
    for a, b in zip(kept["image"], filtered["image"]):
        np.testing.assert_array_equal(pixels(a), pixels(b))


@pytest.mark.parametrize("cls", [StableDiffusionText2Img, StableDiffusionInpaint])
def test_text2img_and_inpaint_modes_generate_with_provenance(cls, model, train, tmp_path):
    settings = {**TINY, "steps": 2, "policy": "per_image", "amount": 1}
    settings.pop("strength")  # text-to-image has none; inpainting keeps its own default range
    out = cls(model=model, **settings).augment(train, task_of("texture", train), 0, tmp_path)
    assert len(out) == len(train) and out["mode"].eq(cls.mode).all()
    assert set(out["source"]) == set(train["image"])
    assert all(Image.open(p).size == (32, 32) for p in out["image"])
    assert out["strength"].isna().all() if cls is StableDiffusionText2Img else out["strength"].between(0.8, 1.0).all()


def test_inpaint_masks_cover_the_asked_fraction_at_a_seeded_place():
    masks = [np.asarray(rectangle_mask(64, 0.25, seed)) > 0 for seed in (1, 2, 1)]
    assert all(m.mean() == pytest.approx(0.25) for m in masks)
    assert np.array_equal(masks[0], masks[2]) and not np.array_equal(masks[0], masks[1])


# ---- bucket arithmetic (planning only; no generation) --------------------------------------

TEXTURE_TRAIN = [-1] * 6 + [0] * 39 + [1] * 16  # thesis Table A.1
OILINESS_TRAIN = [-1] * 58 + [0] * 1 + [1] * 2


@pytest.mark.parametrize("labels, policy, amount, expected", [
    (TEXTURE_TRAIN, "proportional", 0.8, {-1: 5, 0: 31, 1: 13}),
    (OILINESS_TRAIN, "proportional", 0.8, {-1: 46, 0: 1, 1: 2}),
    (TEXTURE_TRAIN, "balance", 0, {-1: 33, 0: 0, 1: 23}),
    (OILINESS_TRAIN, "balance", 0, {-1: 0, 0: 0, 1: 0}),  # classes under 5 samples are not forced into balance
    (TEXTURE_TRAIN, "per_image", 10, {-1: 60, 0: 390, 1: 160}),
])
def test_each_policy_plans_the_expected_images_per_class(labels, policy, amount, expected, tmp_path):
    assert synthetic_counts(labels, policy, amount, 5) == expected
    train = write_train(tmp_path, labels)
    augmenter = StableDiffusionImg2Img(model="unused", policy=policy, amount=amount, **TINY)
    jobs = augmenter.plan(train, "texture", 0)
    planned = Counter(job.label for job in jobs)
    assert {c: planned.get(c, 0) for c in expected} == expected
    # a source used k times gets indices 0..k-1, hence distinct seeds
    assert len({job.image_seed for job in jobs}) == len(jobs)


# ---- prompts ---------------------------------------------------------------------------------

def test_prompt_lookup_covers_classes_merged_labels_and_unknown_tasks(tmp_path):
    book = PromptBook.load(None)
    assert "Low moisture; dehydrated" in book.prompt("moisture", -1.0).positive
    assert "High moisture; plump" in book.prompt("moisture", "1").positive
    binarised = book.prompt("moisture", 0, classes=[-1, 0]).positive  # the cosmetic reader merged 0 and 1
    assert "Hydrated skin" in binarised
    assert "Average moisture" in book.prompt("moisture", 0, classes=[-1, 0, 1]).positive
    generic = book.prompt("lesion_type", "melanoma")
    assert "lesion type: melanoma" in generic.positive and generic.negative.startswith("face, eyes")
    custom = tmp_path / "p.yaml"
    custom.write_text("generic: {base: skin, descriptor: 'grade {label}'}\ntasks: {}\n")
    assert PromptBook.load(custom).prompt("texture", 2).positive == "skin, grade 2"


def test_bad_configuration_is_reported_with_what_to_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'per_task.oiliness.sampler'"):
        StableDiffusionImg2Img(per_task={"oiliness": {"sampler": "x"}})
    with pytest.raises(ConfigError, match=r"'scheduler': input should be 'euler_ancestral', .*got 'lms'"):
        StableDiffusionImg2Img(scheduler="lms")
    with pytest.raises(ConfigError, match="steps x strength"):
        StableDiffusionImg2Img(steps=[2, 3])
    with pytest.raises(ConfigError, match=r"'policy': input should be 'proportional', 'balance' or 'per_image'"):
        StableDiffusionImg2Img(policy="smote")
    with pytest.raises(ConfigError, match=r"'steps'.*low > high"):
        StableDiffusionImg2Img(steps=[36, 24])
    with pytest.raises(ConfigError, match=r"'resolution': input should be a multiple of 8"):
        StableDiffusionImg2Img(resolution=500)
    with pytest.raises(ConfigError, match=r"specular_ranges.oiliness.-1 must be \[low, high\]"):
        StableDiffusionImg2Img(specular_ranges={"oiliness": {-1: [0.5, 0.2]}})
    with pytest.raises(ConfigError, match="missing.yaml: file not found; expected a prompt file"):
        StableDiffusionImg2Img(prompts=str(tmp_path / "missing.yaml"))


def test_a_single_value_fixes_a_range():
    augmenter = StableDiffusionImg2Img(steps=30, strength=[0.3], guidance_scale=5)
    assert (augmenter.config["steps"], augmenter.config["strength"]) == ([30, 30], [0.3, 0.3])
    drawn = augmenter.draw_settings(augmenter.task_settings("texture"), seed=7)
    assert (drawn["steps"], drawn["strength"], drawn["guidance_scale"]) == (30, 0.3, 5.0)
