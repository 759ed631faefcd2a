"""A Hugging Face transformers ``CLIPModel`` as a vision-language backbone (MONET as a preset).

``model`` is a local folder saved by ``save_pretrained`` (``config.json``, weights,
``preprocessor_config.json`` and tokenizer files) or a hub id, resolved from the Hugging Face
cache first (offline and uncached fails in seconds). Preprocessing is the folder's
``CLIPImageProcessor`` (shorter side, centre crop, rescale, normalise), run by skinbench's batched
preprocessing; tokenizing is its tokenizer. Image embeddings are ``get_image_features`` (projected,
unnormalised) and text embeddings ``get_text_features``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field
from skinbench.sdk import (
    ConfigError,
    folder_identity,
    hookimpl,
    hub_file,
    hub_snapshot,
    LOCAL_HINT,
    PluginMeta,
    Preset,
    TorchParams,
    VisionLanguageBackbone,
)

if TYPE_CHECKING:
    import torch

SMALL_FILES = ("config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json",
               "merges.txt", "special_tokens_map.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}
"""PIL resampling codes of ``preprocessor_config.json`` that skinbench's preprocessing reproduces."""
PRESETS = {
    "monet": Preset("suinleelab/monet", PluginMeta(
        license="see the model card (not stated in skinbench)",
        citation="Kim et al., Transparent medical image AI via an image-text foundation model grounded in medical "
                 "literature, Nature Medicine 2024",
        pretraining_data=["105,550 dermatology images paired with text from PubMed articles and medical textbooks"],
        url="https://huggingface.co/suinleelab/monet")),
}


class HfClipBackbone(VisionLanguageBackbone):
    """A transformers CLIPModel (preset: monet) from a local folder or the hub; projected image and text embeddings."""

    name = "hf-clip"
    code_modules = ("skinbench.plugins.backbones._hf_image_encoder",)

    class Params(TorchParams):
        model: str = Field("monet", description="a preset, a hub id or a save_pretrained folder")
        revision: str | None = Field(None, description="hub models: branch, tag or commit (default main)")

    meta = {"license": "per model (see the model card)",
            "citation": "Radford et al., Learning Transferable Visual Models From Natural Language Supervision "
                        "(ICML 2021); Wolf et al., Transformers (EMNLP 2020)"}
    transient = ("_model", "_text", "_clip", "_tokenizer")
    presets = PRESETS

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self._clip = self._tokenizer = None
        self._folder: Path | None = None

    def folder(self) -> Path:
        if self._folder is None:
            local = Path(self.source).expanduser()
            if local.is_dir():
                self._folder = local
            elif local.is_absolute() or self.source.startswith((".", "~")) or self.source.count("/") != 1:
                raise ConfigError(f"backbone 'hf-clip': model '{self.source}' is not a folder, a preset "
                                  f"({', '.join(PRESETS)}) nor a hub id (owner/name)")
            else:
                plugin = f"backbone 'hf-clip' model '{self.config['model']}'"
                self._folder = hub_snapshot(self.source, SMALL_FILES, plugin, self.config["revision"], LOCAL_HINT)
                hub_file(self.source, WEIGHT_FILES, plugin, self.config["revision"], LOCAL_HINT)
        return self._folder

    def native_data_config(self) -> dict[str, Any]:
        """The folder's CLIPImageProcessor settings as a timm-style data config."""
        path = self.folder() / "preprocessor_config.json"
        if not path.is_file():
            raise ConfigError(f"backbone 'hf-clip': {path} is missing; the model folder needs its image processor")
        cfg = json.loads(path.read_text(encoding="utf-8"))
        shortest = (cfg.get("size") or {}).get("shortest_edge") if isinstance(cfg.get("size"), dict) else cfg.get("size")
        crop = cfg.get("crop_size") if isinstance(cfg.get("crop_size"), dict) else {"height": cfg.get("crop_size")}
        supported = all(cfg.get(k, True) for k in ("do_resize", "do_center_crop", "do_rescale", "do_normalize")) \
            and abs(float(cfg.get("rescale_factor", 1 / 255)) - 1 / 255) < 1e-9 and shortest and crop.get("height") \
            and crop.get("height") == crop.get("width", crop.get("height")) and cfg.get("resample", 3) in RESAMPLE
        if not supported:
            raise ConfigError(f"backbone 'hf-clip': {path} is not a resize-shorter-side, centre-crop, rescale 1/255, "
                              "normalise processor with a square crop; skinbench cannot reproduce it")
        return {"input_size": (3, int(crop["height"]), int(crop["height"])), "mean": tuple(cfg["image_mean"]),
                "std": tuple(cfg["image_std"]), "interpolation": RESAMPLE[cfg.get("resample", 3)],
                "crop_pct": int(crop["height"]) / int(shortest)}

    def weights_identity(self) -> dict[str, Any]:
        import transformers

        folder = self.folder()
        weights = next((n for n in WEIGHT_FILES if (folder / n).is_file()), None)
        if weights is None:
            raise ConfigError(f"backbone 'hf-clip': {folder} has none of {', '.join(WEIGHT_FILES)}")
        return {"source": "folder" if Path(self.source).expanduser().is_dir() else self.source,
                "files": folder_identity(folder, (*SMALL_FILES, weights)), "transformers": transformers.__version__}

    def build_model(self) -> torch.nn.Module:
        import torch
        from skinbench.sdk import ImageTower
        from transformers import AutoTokenizer, CLIPModel

        from ._hf_image_encoder import ImageEncoder

        self._clip = CLIPModel.from_pretrained(str(self.folder()), torch_dtype=torch.float32).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(str(self.folder()))
        return ImageTower(ImageEncoder(self._clip), self._clip.config.projection_dim)

    def build_text_encoder(self):
        import torch

        model, tokenizer = self._clip, self._tokenizer
        self._logit_scale = float(model.logit_scale.detach().exp())
        model.to(self.device)
        max_length = min(int(model.config.text_config.max_position_embeddings), tokenizer.model_max_length)

        def encode(texts: list[str], device: torch.device) -> torch.Tensor:
            tokens = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            out = model.get_text_features(**{k: v.to(device) for k, v in tokens.items()})
            return out if torch.is_tensor(out) else out.pooler_output
        return encode


@hookimpl
def skinbench_backbones():
    return [HfClipBackbone]
