"""Any timm model as a frozen backbone, with the thesis's models as named presets.

Weights come from a local file or folder (safetensors, or .pth/.bin read with
``weights_only=True``), from the Hugging Face hub when online (``pretrained`` or
``hf-hub:<repo>``), or are random when the suite says ``weights: random``. No
weights and no network is an error, never silent random weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch

from skinbench.api import ConfigError
from skinbench.hookspecs import hookimpl

from ._torch_base import COMMON_PARAMS, TorchBackbone, check_pool
from ._weights import file_identity, weights_file

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "dinov2-small": ("vit_small_patch14_dinov2.lvd142m", {"dynamic_img_size": True}),
    "dinov2-base": ("vit_base_patch14_dinov2.lvd142m", {"dynamic_img_size": True}),
    "dinov2-large": ("vit_large_patch14_dinov2.lvd142m", {"dynamic_img_size": True}),
    "resnet50": ("resnet50.a1_in1k", {}),
    "efficientnet": ("efficientnet_b0.ra_in1k", {}),
}
"""Short names for the thesis's models: timm name and the create_model arguments they need
(DINOv2 is built for 518 px; ``dynamic_img_size`` lets it run at 224)."""

HUB_FILES = ("model.safetensors", "pytorch_model.bin")


class TimmBackbone(TorchBackbone):
    """Any timm model (or preset: dinov2-small/base/large, resnet50, efficientnet), pooled pre-logit features."""

    name = "timm"
    params = {
        "model": "dinov2-small",   # a preset name or any timm model name
        "weights": "pretrained",   # pretrained (hub) | hf-hub:<repo> | /path/file-or-folder | random
        "pool": None,              # None = the model's own; cls/token, mean/avg, max, avgmax
        "model_kwargs": {},        # extra timm.create_model arguments, e.g. {img_size: 224}
        "seed": 0,                 # only used with weights: random
        **COMMON_PARAMS,
    }
    meta = {"license": "per model (see the timm model card)", "citation": "Wightman, PyTorch Image Models (timm)"}

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self.pool = check_pool(self.config["pool"], self.name)
        self.arch, preset_kwargs = PRESETS.get(self.config["model"], (self.config["model"], {}))
        self.create_kwargs = {**preset_kwargs, **(self.config["model_kwargs"] or {})}
        if not timm.is_model(self.arch.split(".")[0]):
            raise ConfigError(f"backbone 'timm': unknown model '{self.config['model']}'; use a preset "
                              f"({', '.join(PRESETS)}) or a name from timm.list_models()")

    def native_data_config(self) -> dict[str, Any]:
        """Resolved from the pretrained config on a weightless (meta-device) copy: cheap, no download."""
        with torch.device("meta"):
            skeleton = timm.create_model(self.arch, pretrained=False, num_classes=0, **self.create_kwargs)
        return timm.data.resolve_model_data_config(skeleton)

    def weights_identity(self) -> dict[str, Any]:
        weights = str(self.config["weights"])
        if weights == "random":
            return {"random_init_seed": int(self.config["seed"])}
        if weights == "pretrained" or weights.startswith("hf-hub:"):
            repo = self._hub_repo()
            return {"hub": repo, **file_identity(self._hub_file(repo))}
        return file_identity(weights_file(weights, self.name))

    def build_model(self) -> torch.nn.Module:
        weights = str(self.config["weights"])
        if weights == "random":
            torch.manual_seed(int(self.config["seed"]))
            model = timm.create_model(self.arch, pretrained=False, num_classes=0, **self.create_kwargs)
        else:
            path = self._hub_file(self._hub_repo()) if weights == "pretrained" or weights.startswith("hf-hub:") \
                else weights_file(weights, self.name)
            model = timm.create_model(self.arch, pretrained=True, num_classes=0,
                                      pretrained_cfg_overlay={"file": str(path)}, **self.create_kwargs)
        if self.pool is not None:
            model.reset_classifier(0, global_pool=self.pool)
        return model

    def _hub_repo(self) -> str:
        weights = str(self.config["weights"])
        if weights.startswith("hf-hub:"):
            return weights.removeprefix("hf-hub:")
        cfg = timm.models.get_pretrained_cfg(self.arch)
        repo = cfg.hf_hub_id if cfg is not None else None
        if not repo:
            raise ConfigError(f"backbone 'timm': model '{self.arch}' has no hub weights; "
                              "set 'weights' to a local file or folder, or to 'random'")
        return repo

    def _hub_file(self, repo: str) -> Path:
        """The weights file from the HF cache, else downloaded; offline and uncached is a clear error."""
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        for filename in HUB_FILES:  # a cached copy needs no network
            try:
                return Path(hf_hub_download(repo, filename, local_files_only=True))
            except Exception:  # not cached (the exact class differs across huggingface_hub versions)
                continue
        for filename in HUB_FILES:
            try:
                return Path(hf_hub_download(repo, filename))
            except LocalEntryNotFoundError:
                reason = "offline"
                break
            except EntryNotFoundError:
                continue
            except Exception as exc:  # no network, gated repo, ...
                reason = f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                break
        else:
            reason = f"the repo has none of {', '.join(HUB_FILES)}"
        raise ConfigError(
            f"backbone 'timm' model '{self.config['model']}': no weights. They are not in the Hugging Face cache and "
            f"could not be downloaded from '{repo}' ({reason}). Offline, download them elsewhere and set "
            "'weights: /path/to/model.safetensors' (or a folder); 'weights: random' is for smoke tests only."
        )


@hookimpl
def skinbench_backbones():
    return [TimmBackbone]
