"""A tiny random-init Stable Diffusion img2img pipeline saved to a folder, for offline tests.

Component shapes follow diffusers' own img2img test (``get_dummy_components``); the
tokenizer is a byte-level CLIP BPE with no merges, written here so nothing is downloaded.
The pipeline generates 32-64 px images in tens of milliseconds on a CPU.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")
MAX_TOKENS = 77


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
    """Save a random-init img2img pipeline to ``folder`` and return the folder."""
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
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder / "model")
    return folder / "model"
