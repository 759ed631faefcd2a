"""Any open_clip model (Ilharco et al., OpenCLIP) as a vision-language backbone: image and text embeddings.

``model`` is a preset (DermLIP, BiomedCLIP), an ``hf-hub:<repo>`` id (resolved from the Hugging Face
cache first; offline and uncached fails in seconds), a local folder laid out as such a repo
(``open_clip_config.json`` + weights + tokenizer files), or an open_clip architecture name
(``ViT-B-16``) with ``weights`` a local checkpoint file (or ``random`` for smoke tests). The model's
own preprocessing (``preprocess_cfg``) and tokenizer are used. Image embeddings are
``model.encode_image`` (projected, unnormalised); text embeddings are ``model.encode_text``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field
from skinbench.sdk import (
    ConfigError,
    file_digest,
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

CONFIG_FILE = "open_clip_config.json"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
                "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth")
"""open_clip's own order of preference in a folder (``_find_checkpoint_in_dir``); the first one found is loaded."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt", "spiece.model")


PRESETS = {
    "dermlip": Preset("hf-hub:redlessone/DermLIP_ViT-B-16", PluginMeta(
        license="non-commercial research (the Derm1M repository is CC BY-NC 4.0; check the model card)",
        citation="Yan et al., Derm1M: A Million-scale Vision-Language Dataset Aligned with Clinical Ontology "
                 "Knowledge for Dermatology (ICCV 2025)",
        pretraining_data=["Derm1M (403,563 dermatology images with 1,029,761 captions from educational resources)"],
        url="https://huggingface.co/redlessone/DermLIP_ViT-B-16")),
    "dermlip-panderm": Preset("hf-hub:redlessone/DermLIP_PanDerm-base-w-PubMed-256", PluginMeta(
        license="CC-BY-NC-ND-4.0 (model card)",
        citation="Yan et al., Derm1M: A Million-scale Vision-Language Dataset Aligned with Clinical Ontology "
                 "Knowledge for Dermatology (ICCV 2025)",
        pretraining_data=["Derm1M (403,563 dermatology images)", "PanDerm pretraining images (vision encoder)"],
        url="https://huggingface.co/redlessone/DermLIP_PanDerm-base-w-PubMed-256")),
    "biomedclip": Preset("hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224", PluginMeta(
        license="MIT (model card)",
        citation="Zhang et al., BiomedCLIP: a multimodal biomedical foundation model pretrained from fifteen "
                 "million scientific image-text pairs (arXiv 2303.00915)",
        pretraining_data=["PMC-15M (15M figure-caption pairs from PubMed Central articles)"],
        url="https://huggingface.co/microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224")),
}


class OpenClipBackbone(VisionLanguageBackbone):
    """An open_clip model (presets: dermlip, dermlip-panderm, biomedclip); projected image and text embeddings."""

    name = "open-clip"

    class Params(TorchParams):
        model: str = Field("dermlip", description="a preset, hf-hub:<repo>, a local repo folder, or an "
                                                  "open_clip architecture name with 'weights'")
        weights: str | None = Field(None, description="with an architecture name: a checkpoint file, or random")
        revision: str | None = Field(None, description="hub models: branch, tag or commit (default main)")
        seed: int = Field(0, description="only used with weights: random")

    meta = {"license": "per model (see PRESETS and the model card)",
            "citation": "Ilharco et al., OpenCLIP (2021); Radford et al., Learning Transferable Visual Models From "
                        "Natural Language Supervision (ICML 2021)"}

    transient = ("_model", "_text", "_clip", "_tokenizer")
    presets = PRESETS

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self._clip = self._tokenizer = None
        self._folder: Path | None = None
        if self._architecture() and not self.config["weights"]:
            raise ConfigError(f"backbone 'open-clip': architecture '{self.source}' needs 'weights' (a checkpoint "
                              "file, or random); or set 'model' to a preset, an hf-hub: id or a local repo folder")

    # ----- where the model is -------------------------------------------------------------
    def _architecture(self) -> bool:
        """An open_clip architecture name rather than a repo (hub id or folder)."""
        if self.source.startswith(("hf-hub:", "local-dir:")) or Path(self.source).expanduser().is_dir():
            return False
        import open_clip

        return self.source in open_clip.list_models()

    def folder(self) -> Path:
        """The repo folder: local, or the hub snapshot in the Hugging Face cache (fails fast offline)."""
        if self._folder is None:
            if self.source.startswith("hf-hub:"):
                repo, plugin = self.source.removeprefix("hf-hub:"), f"backbone 'open-clip' model '{self.config['model']}'"
                self._folder = hub_snapshot(repo, (CONFIG_FILE, *TOKENIZER_FILES), plugin, self.config["revision"],
                                            LOCAL_HINT)
                hub_file(repo, WEIGHT_FILES, plugin, self.config["revision"], LOCAL_HINT)  # into the same snapshot
            else:
                folder = Path(self.source.removeprefix("local-dir:")).expanduser()
                if not (folder / CONFIG_FILE).is_file():
                    raise ConfigError(f"backbone 'open-clip': model '{self.source}' is not a preset ("
                                      f"{', '.join(PRESETS)}), an hf-hub: id, a folder with {CONFIG_FILE}, nor an "
                                      "open_clip architecture (open_clip.list_models())")
                self._folder = folder
        return self._folder

    def model_config(self) -> dict[str, Any]:
        """``{"model_cfg": ..., "preprocess_cfg": ...}`` as open_clip reads it, without building the model."""
        import open_clip

        if self._architecture():
            return {"model_cfg": open_clip.get_model_config(self.source), "preprocess_cfg": {}}
        return json.loads((self.folder() / CONFIG_FILE).read_text(encoding="utf-8"))

    # ----- TorchBackbone hooks --------------------------------------------------------------
    def native_data_config(self) -> dict[str, Any]:
        """open_clip's eval transform: shorter side to ``size`` (bicubic by default), centre crop ``size``."""
        from open_clip.transform import PreprocessCfg, merge_preprocess_dict

        config = self.model_config()
        prep = merge_preprocess_dict(PreprocessCfg(), config.get("preprocess_cfg") or {})
        size = config["model_cfg"].get("vision_cfg", {}).get("image_size", prep["size"])
        size = size if isinstance(size, int) else size[0] if size[0] == size[1] else None
        if prep["resize_mode"] != "shortest" or size is None:
            raise ConfigError(f"backbone 'open-clip' model '{self.source}': resize_mode '{prep['resize_mode']}' with "
                              f"size {prep['size']} is not supported; only 'shortest' with a square size is")
        return {"input_size": (3, size, size), "mean": tuple(prep["mean"]), "std": tuple(prep["std"]),
                "interpolation": prep["interpolation"], "crop_pct": 1.0}

    def weights_identity(self) -> dict[str, Any]:
        import open_clip

        if not self._architecture():
            weights = next((n for n in WEIGHT_FILES if (self.folder() / n).is_file()), None)
            if weights is None:
                raise ConfigError(f"backbone 'open-clip': {self.folder()} has none of {', '.join(WEIGHT_FILES)}")
            files = folder_identity(self.folder(), (CONFIG_FILE, weights, *TOKENIZER_FILES))
            return {"source": self.source if self.source.startswith("hf-hub:") else "folder", "files": files,
                    "open_clip": open_clip.__version__}
        weights = str(self.config["weights"])
        tower = {"architecture": self.source, "config": self.model_config(), "open_clip": open_clip.__version__}
        if weights == "random":
            return {**tower, "random_init_seed": int(self.config["seed"])}
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"backbone 'open-clip': weights file {path} does not exist")
        return {**tower, "file": path.name, "sha256": file_digest(path)}

    def build_model(self) -> torch.nn.Module:
        import open_clip
        import torch
        from skinbench.sdk import ImageTower

        if self._architecture():
            weights = str(self.config["weights"])
            torch.manual_seed(int(self.config["seed"]))
            model = open_clip.create_model(self.source, pretrained=None if weights == "random" else weights,
                                           pretrained_image=False, pretrained_text=False)
            self._tokenizer = open_clip.get_tokenizer(self.source)
        else:  # hub base weights are never fetched behind the user's back: the checkpoint holds both towers
            model = open_clip.create_model(f"local-dir:{self.folder()}", pretrained_image=False,
                                           pretrained_text=False)
            self._tokenizer = open_clip.get_tokenizer(f"local-dir:{self.folder()}")
        self._clip = model.eval()
        return ImageTower(model.visual, self.model_config()["model_cfg"]["embed_dim"])

    def build_text_encoder(self):
        model, tokenizer = self._clip, self._tokenizer
        self._logit_scale = float(model.logit_scale.detach().exp())
        model.to(self.device)

        def encode(texts: list[str], device: torch.device) -> torch.Tensor:
            return model.encode_text(tokenizer(texts).to(device))
        return encode


@hookimpl
def skinbench_backbones():
    return [OpenClipBackbone]
