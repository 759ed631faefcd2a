"""The SD augmenters' identity: what changes images changes it, what only changes speed does not.

No pipeline runs here: identities resolve from parameters, the model folder, the prompt file
and the (local) Hugging Face cache.
"""
from __future__ import annotations


import huggingface_hub.constants
import pytest

from skinbench.api import ConfigError
from skinbench.record.identity import augmentation_key
from skinbench.plugins.augmenters.classical import ClassicalAugmenter
from skinbench.plugins.augmenters.sd_img2img import StableDiffusionImg2Img
from skinbench.plugins.augmenters.sd_inpaint import StableDiffusionInpaint
from skinbench.plugins.augmenters.sd_text2img import StableDiffusionText2Img

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def model_folder(tmp_path):
    """A stand-in model folder: only its bytes matter to the identity."""
    folder = tmp_path / "sd"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"weights-v1")
    return folder


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, offline: anything not cached must fail fast."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def digest(cls=StableDiffusionImg2Img, **params) -> str:
    return cls(**params).identity.digest


def test_batch_size_changes_the_identity_and_runtime_parameters_do_not(model_folder):
    base = {"model": str(model_folder), "device": "cpu"}
    assert digest(**base) != digest(**base, batch_size=4)  # jitter is drawn per batch
    # on the CPU, auto resolves to fp32: the same dtype in use, the same identity
    assert digest(**base) == digest(**base, dtype="fp32", attention_slicing=True, progress=False)
    assert digest(**base) != digest(**base, dtype="bf16")
    assert digest(**base) != digest(**base, steps=[10, 20])
    assert digest(**base) != digest(StableDiffusionText2Img, **base)  # another mode


def test_weights_prompts_and_dtype_in_use_enter_the_artefacts(model_folder, tmp_path):
    before = StableDiffusionImg2Img(model=str(model_folder), device="cpu").identity.artefacts
    assert before["dtype"] == "float32" and before["device_type"] == "cpu"
    (model_folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"weights-v2")
    after = StableDiffusionImg2Img(model=str(model_folder), device="cpu").identity.artefacts
    assert after["model"]["fingerprint"] != before["model"]["fingerprint"]
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text("generic: {base: skin, descriptor: 'grade {label}'}\ntasks: {}\n")
    edited = StableDiffusionImg2Img(model=str(model_folder), prompts=str(prompts), device="cpu").identity.artefacts
    assert edited["prompts_digest"] != after["prompts_digest"]
    assert StableDiffusionImg2Img(model=str(model_folder), dtype="bf16").identity.artefacts["dtype"] == "bfloat16"


def test_cache_keys_derive_from_the_identity(model_folder):
    one = StableDiffusionImg2Img(model=str(model_folder))
    other = StableDiffusionImg2Img(model=str(model_folder), resolution=256)  # changes every image
    selecting = StableDiffusionImg2Img(model=str(model_folder), min_ssim=0.5, amount=2.0)  # changes which are kept
    item = {"source": "ab" * 32, "seed": 7}
    assert augmentation_key(one, **item) != augmentation_key(other, **item)
    assert augmentation_key(one, **item) == augmentation_key(selecting, **item)
    assert one.identity.digest != selecting.identity.digest  # new cells all the same
    assert augmentation_key(one, **item) == augmentation_key(StableDiffusionImg2Img(model=str(model_folder)), **item)
    assert ClassicalAugmenter().identity.digest != ClassicalAugmenter(rotation=10.0).identity.digest


def test_a_hub_model_resolves_its_commit_from_the_cache_offline(hub_cache):
    repo = hub_cache / "models--org--tiny-sd"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    (repo / "snapshots" / COMMIT / "model_index.json").write_text("{}")
    artefacts = StableDiffusionInpaint(model="org/tiny-sd").identity.artefacts
    assert artefacts["model"] == {"hub_id": "org/tiny-sd", "revision": COMMIT}


def test_an_uncached_hub_model_offline_fails_without_a_network_call_naming_the_augmenter(hub_cache, connections):
    with pytest.raises(ConfigError, match=r"augmenter 'sd-img2img': 'models/sd15' is not in the Hugging Face "
                                          r"cache .* HF_HUB_OFFLINE is set\. 'models/sd15' is not a local folder"):
        StableDiffusionImg2Img(model="models/sd15").identity.record()
    assert connections == []
