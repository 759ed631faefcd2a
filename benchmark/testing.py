"""Tiny models built in place, for offline tests and benchmarks: random-init Stable Diffusion img2img pipelines
and CLIP models (open_clip and transformers) saved to a folder in the exact on-disk layout of their hub
repos. Installed with skinbench (no pytest needed), so ``benchmarks/`` can use it too.

``build_tiny_sd`` follows diffusers' own img2img test components (``get_dummy_components``)
and generates 32-64 px images in tens of milliseconds on a CPU. ``build_sd15_shaped`` has
Stable Diffusion v1.5's exact shapes (860 M-parameter UNet, its VAE and a 12-layer CLIP text
encoder): random weights run exactly as fast as the real ones, so speed can be measured
without downloading anything. Both use a byte-level CLIP BPE tokenizer with no merges,
written here.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")
MAX_TOKENS = 77
SD15_VOCAB = 49408


def byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (GPT-2/CLIP convention)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in printable]
    table = {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(shifted)}
    return [table[b] for b in range(256)]


def write_tokenizer(folder: Path) -> CLIPTokenizer:
    """Byte-level vocabulary (every byte, alone and word-final) and an empty merge list."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = byte_symbols()
    tokens = list(SPECIAL_TOKENS) + symbols + [s + "</w>" for s in symbols]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=MAX_TOKENS)


def build_tiny_sd(folder: str | Path, seed: int = 0) -> Path:
    """Save a tiny random-init img2img pipeline to ``folder`` and return the model folder."""
    folder = Path(folder)
    tokenizer = write_tokenizer(folder / "_tokenizer_src")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
        layer_norm_eps=1e-5, num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tokenizer),
        max_position_embeddings=MAX_TOKENS,
    ))
    return _save(folder, unet, vae, text_encoder, tokenizer, PNDMScheduler(skip_prk_steps=True, steps_offset=1))


def build_sd15_shaped(folder: str | Path, seed: int = 0) -> Path:
    """Save a random-init pipeline with SD v1.5's shapes (``runwayml/stable-diffusion-v1-5`` configs)."""
    folder = Path(folder)
    tokenizer = write_tokenizer(folder / "_tokenizer_src")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # the other defaults are v1.5's
    vae = AutoencoderKL(
        block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4, sample_size=512,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=768, intermediate_size=3072,
        num_attention_heads=12, num_hidden_layers=12, vocab_size=SD15_VOCAB, max_position_embeddings=MAX_TOKENS,
        hidden_act="quick_gelu", projection_dim=768,
    ))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              steps_offset=1)
    return _save(folder, unet, vae, text_encoder, tokenizer, scheduler)


def _save(folder: Path, unet, vae, text_encoder, tokenizer, scheduler) -> Path:
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(folder / "model")
    return folder / "model"


TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
"""A two-tower ViT CLIP with one layer per tower; open_clip's own BPE tokenizer (the default) needs no files."""


def build_tiny_open_clip(folder: str | Path, seed: int = 0, image_size: int = 32,
                         preprocess: dict | None = None) -> Path:
    """Save a random-init open_clip model as a hub repo is laid out (``open_clip_config.json`` and
    ``open_clip_model.safetensors``) and return the folder, which ``create_model('local-dir:...')`` loads."""
    import copy

    import open_clip
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(TINY_OPEN_CLIP)
    config["vision_cfg"]["image_size"] = image_size
    preprocess = preprocess or {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
                                "interpolation": "bicubic", "resize_mode": "shortest"}
    torch.manual_seed(seed)
    model = open_clip.CLIP(**config)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": preprocess}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder


def build_tiny_hf_clip(folder: str | Path, seed: int = 0, image_size: int = 32) -> Path:
    """Save a random-init transformers ``CLIPModel`` with its tokenizer (byte-level BPE, written here) and
    image processor, as ``save_pretrained`` lays out a hub repo, and return the folder."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = Path(folder)
    tokenizer = write_tokenizer(folder / "_tokenizer_src")
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1, "hidden_size": 32,
                     "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 1,
                     "vocab_size": len(tokenizer), "max_position_embeddings": MAX_TOKENS},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 1,
                       "image_size": image_size, "patch_size": 8},
        projection_dim=16,
    )
    model = CLIPModel(config)
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}) \
        .save_pretrained(folder / "model")
    return folder / "model"
