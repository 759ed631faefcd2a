"""Any timm model as a frozen backbone, with the thesis's models as named presets.

Weights come from a local file or folder (safetensors, or .pth/.bin read with
``weights_only=True``), from the Hugging Face hub when online (``pretrained`` or
``hf-hub:<repo>``), or are random when the suite says ``weights: random``. No
weights and no network is an error, never silent random weights.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field
from skinbench.sdk import ConfigError, hookimpl, hub_file, PoolName, timm_pool, TorchBackbone, TorchParams

from ._weights import file_identity, weights_file

if TYPE_CHECKING:
    import torch

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
LOCAL_WEIGHTS_HINT = ("Download the weights where the hub is reachable and set 'weights: /path/to/model.safetensors' "
                      "(or a folder); 'weights: random' is for smoke tests only")


class TimmBackbone(TorchBackbone):
    """Any timm model (or preset: dinov2-small/base/large, resnet50, efficientnet), pooled pre-logit features."""

    name = "timm"

    class Params(TorchParams):
        model: str = Field("dinov2-small", description="a preset name or any timm model name")
        weights: str = Field("pretrained",
                             description="pretrained (hub) | hf-hub:<repo> | /path/file-or-folder | random")
        revision: str | None = Field(None, description="hub weights: branch, tag or commit (default main)")
        pool: PoolName | None = Field(None, description="None = the model's own")
        model_kwargs: dict[str, Any] = Field({}, description="extra timm.create_model arguments, e.g. {img_size: 224}")
        seed: int = Field(0, description="only used with weights: random")

    meta = {"license": "per model (see the timm model card)", "citation": "Wightman, PyTorch Image Models (timm)"}

    def __init__(self, **overrides: Any):
        import timm

        super().__init__(**overrides)
        self.pool = timm_pool(self.config["pool"])
        self.arch, preset_kwargs = PRESETS.get(self.config["model"], (self.config["model"], {}))
        self.create_kwargs = {**preset_kwargs, **(self.config["model_kwargs"] or {})}
        if not timm.is_model(self.arch.split(".")[0]):
            raise ConfigError(f"backbone 'timm': unknown model '{self.config['model']}'; use a preset "
                              f"({', '.join(PRESETS)}) or a name from timm.list_models()")

    def native_data_config(self) -> dict[str, Any]:
        """Resolved from the pretrained config on a weightless (meta-device) copy: cheap, no download."""
        import timm
        import torch

        with torch.device("meta"):
            skeleton = timm.create_model(self.arch, pretrained=False, num_classes=0, **self.create_kwargs)
        return timm.data.resolve_model_data_config(skeleton)

    def weights_identity(self) -> dict[str, Any]:
        weights = str(self.config["weights"])
        if weights == "random":
            return {"random_init_seed": int(self.config["seed"])}
        if self._from_hub():
            return self._hub_weights().identity()
        return file_identity(weights_file(weights, self.name))

    def build_model(self) -> torch.nn.Module:
        import timm
        import torch

        weights = str(self.config["weights"])
        if weights == "random":
            torch.manual_seed(int(self.config["seed"]))
            model = timm.create_model(self.arch, pretrained=False, num_classes=0, **self.create_kwargs)
        else:
            path = self._hub_weights().path if self._from_hub() else weights_file(weights, self.name)
            model = timm.create_model(self.arch, pretrained=True, num_classes=0,
                                      pretrained_cfg_overlay={"file": str(path)}, **self.create_kwargs)
        if self.pool is not None:
            model.reset_classifier(0, global_pool=self.pool)
        return model

    def _from_hub(self) -> bool:
        weights = str(self.config["weights"])
        return weights == "pretrained" or weights.startswith("hf-hub:")

    def _hub_weights(self):
        """The weights file from the HF cache, else downloaded; offline or unreachable fails in seconds."""
        return hub_file(self._hub_repo(), HUB_FILES, f"backbone 'timm' model '{self.config['model']}'",
                        self.config["revision"], LOCAL_WEIGHTS_HINT)

    def _hub_repo(self) -> str:
        import timm

        weights = str(self.config["weights"])
        if weights.startswith("hf-hub:"):
            return weights.removeprefix("hf-hub:")
        cfg = timm.models.get_pretrained_cfg(self.arch)
        repo = cfg.hf_hub_id if cfg is not None else None
        if not repo:
            raise ConfigError(f"backbone 'timm': model '{self.arch}' has no hub weights; "
                              "set 'weights' to a local file or folder, or to 'random'")
        return repo


@hookimpl
def skinbench_backbones():
    return [TimmBackbone]
