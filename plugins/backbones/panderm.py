"""PanDerm (Yan et al., 2025), the dermatology foundation model, from its released checkpoint.

The checkpoint (``panderm_ll_data6_checkpoint-499.pth``, ViT-L/16; or ``panderm_bb_...``,
ViT-B/16) is distributed by the authors on Google Drive under CC-BY-NC-ND 4.0, so the user
downloads it and points ``weights`` at it. Its BEiT/CAE-style encoder is renamed explicitly
into a timm VisionTransformer and loaded strictly: PanDerm's own loader uses ``strict=False``,
which silently ignores mismatched keys. Features are the CLS token after the final norm and
preprocessing is PanDerm's (resize 256, crop 224, std 0.228/0.224/0.225), as its linear probe uses.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from skinbench.sdk import ConfigError, hookimpl, TorchBackbone, TorchParams

from ._weights import file_identity, load_strict, read_state_dict, weights_file

if TYPE_CHECKING:
    import torch

ARCHITECTURES = {"large": "vit_large_patch16_224", "base": "vit_base_patch16_224"}
VIT_KWARGS = {"init_values": 0.1, "qkv_bias": True, "global_pool": "token", "num_classes": 0}
"""PanDerm's encoder: layer scale (init 0.1), qkv bias, LayerNorm eps 1e-6 (timm's default), CLS pooling."""
DATA_CONFIG = {"input_size": (3, 224, 224), "mean": (0.485, 0.456, 0.406), "std": (0.228, 0.224, 0.225),
               "interpolation": "bilinear", "crop_pct": 224 / 256, "crop_mode": "center"}
"""PanDerm's eval transform: Resize(256) bilinear, CenterCrop(224); std[0] is 0.228, not timm's 0.229."""
DROPPED_PREFIXES = ("decoder.", "teacher.", "head.")
"""Pretraining-only parts of the checkpoint, and any classifier: not part of the feature extractor."""


def panderm_to_timm(checkpoint: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a PanDerm encoder state dict to timm VisionTransformer keys.

    ``encoder.`` is stripped; ``attn.q_bias`` + ``attn.v_bias`` become ``attn.qkv.bias`` with a zero
    k bias (PanDerm's qkv Linear has none); ``gamma_1``/``gamma_2`` become ``ls1.gamma``/``ls2.gamma``.
    """
    import torch

    if any(k.startswith("encoder.") for k in checkpoint):
        checkpoint = {k.removeprefix("encoder."): v for k, v in checkpoint.items() if k.startswith("encoder.")}
    out = {}
    for key, value in checkpoint.items():
        if key.startswith(DROPPED_PREFIXES) or key.endswith(".attn.v_bias"):
            continue
        if key.endswith(".attn.q_bias"):
            prefix = key.removesuffix("q_bias")
            v_bias = checkpoint[prefix + "v_bias"]
            out[prefix + "qkv.bias"] = torch.cat([value, torch.zeros_like(value), v_bias])
        elif key.endswith(".gamma_1") or key.endswith(".gamma_2"):
            out[key[:-len("gamma_1")] + f"ls{key[-1]}.gamma"] = value
        else:
            out[key] = value
    return out


def load_panderm(model: torch.nn.Module, path) -> None:
    """Load a PanDerm checkpoint file into a timm VisionTransformer, every key matched."""
    load_strict(model, panderm_to_timm(read_state_dict(path)), f"PanDerm checkpoint {path}")


class PanDerm(TorchBackbone):
    """PanDerm ViT-L/16 (or ViT-B/16) dermatology foundation model; CLS features, local checkpoint."""

    name = "panderm"

    class Params(TorchParams):
        weights: str | None = Field(None, description="path to panderm_ll_data6_checkpoint-499.pth (or the ViT-B file)")
        architecture: Literal[tuple(ARCHITECTURES)] = Field("large", description="large (ViT-L/16, the paper model) "
                                                                                 "or base (ViT-B/16)")

    meta = {
        "license": "CC-BY-NC-ND-4.0 (weights)",
        "citation": "Yan et al., A multimodal vision foundation model for clinical dermatology, Nature Medicine 2025",
        "pretraining_data": ["PanDerm pretraining data"],  # 2.1M images, 11 clinical sources, 4 modalities (collections.yaml)
    }

    def native_data_config(self) -> dict[str, Any]:
        return dict(DATA_CONFIG)

    def weights_identity(self) -> dict[str, Any]:
        return file_identity(self._weights_path())

    def build_model(self) -> torch.nn.Module:
        import timm

        path = self._weights_path()  # before building: a missing path fails fast
        model = timm.create_model(ARCHITECTURES[self.config["architecture"]], pretrained=False, **VIT_KWARGS)
        load_panderm(model, path)
        return model

    def _weights_path(self):
        if not self.config["weights"]:
            raise ConfigError("backbone 'panderm' needs 'weights': the path to the released checkpoint "
                              "(panderm_ll_data6_checkpoint-499.pth from the PanDerm GitHub README's Google Drive link)")
        return weights_file(self.config["weights"], self.name)


@hookimpl
def skinbench_backbones():
    return [PanDerm]
