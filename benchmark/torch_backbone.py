"""What every torch backbone shares: typed parameters, preprocessing, TTA, devices, batching, pooled features.

A subclass says how to build its network (:meth:`TorchBackbone.build_model`, a timm model
whose ``forward_features`` + ``forward_head(pre_logits=True)`` give pooled features), what
its native preprocessing is, and which weights it holds. Everything else lives here, so the
timm, PanDerm and EfficientNet-Lite0 backbones embed, cache and fine-tune the same way.

Images flow as uint8 tensors: DataLoader workers decode them (PIL, exactly as
:func:`skinbench.images.load_rgb`; or, with ``jpeg_decoder: nvjpeg``, only read JPEG bytes
for the GPU to decode). On a CUDA device the batch is copied as uint8 (4x less than floats)
and resized, cropped and normalised there (:mod:`skinbench.preprocess`); on the CPU the workers do
it, in parallel. Outputs stay on the device until the last batch, so the host never waits
for the GPU in between.
"""
from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Iterable, Literal, Sequence

import importlib.metadata
import numpy as np
from pydantic import Field
from skinbench.api import Backbone, ConfigError, PluginParams
from skinbench.devices import (
    DeviceName,
    PrecisionName,
    autocast,
    device_type,
    precision_label,
    resolve_device,
    resolve_precision,
    to_device,
)
from skinbench.images import rgb_tensor

from skinbench.preprocess import INTERPOLATIONS, Preprocess

if TYPE_CHECKING:
    import torch

    from skinbench.torch_modules import PooledFeatures

Triple = Annotated[list[float], Field(min_length=3, max_length=3)]
PoolName = Literal["cls", "token", "mean", "avg", "max", "avgmax", "map"]
"""timm's pooling names; ``cls`` and ``mean`` are accepted as aliases of ``token`` and ``avg``."""
POOL_ALIASES = {"cls": "token", "mean": "avg"}


class TorchParams(PluginParams):
    """Parameters every torch backbone accepts; subclass it for a backbone's own."""

    tta: bool = Field(False, description="FiveCrop + horizontal flips, ten views averaged (thesis Table 4.1)")
    resize: Annotated[int, Field(ge=1)] | None = Field(
        None, description="shorter side before cropping; default crop / crop_pct of the native config")
    crop: Annotated[int, Field(ge=1)] | None = Field(None, description="square crop; default the native input size")
    mean: Triple | None = Field(None, description="normalisation; default the native config")
    std: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=3, max_length=3)] | None = None
    interpolation: Literal[INTERPOLATIONS] | None = Field(None, description="default the native config")
    jpeg_decoder: Literal["pil", "nvjpeg"] = Field(
        "pil", description="nvjpeg decodes JPEGs on the GPU (CUDA only); its pixels differ slightly from PIL's")
    device: DeviceName = "auto"
    precision: PrecisionName = Field("auto", description="auto: bf16 (else fp16) autocast on CUDA, fp32 elsewhere")
    batch_size: Annotated[int, Field(ge=1)] = 32
    num_workers: Annotated[int, Field(ge=0)] = Field(
        0, description="DataLoader workers decoding while the model computes")


class TorchBackbone(Backbone):
    """Base of torch backbones; subclasses implement the three hooks at the bottom."""

    Params: ClassVar[type[PluginParams]] = TorchParams
    transient = ("_model",)
    code_modules = ("skinbench.torch_modules",)

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self._model: PooledFeatures | None = None
        self._weights_identity: dict | None = None
        self._preprocessing: dict | None = None

    # ----- identity and preprocessing -----------------------------------------------------
    def artefacts(self) -> dict[str, Any]:
        """Weights content, resolved preprocessing, and the device type, precision and library
        versions actually used (bf16 on CUDA and fp32 on the CPU give different embeddings).
        Versions come from the installed metadata, so that on a CPU-only machine nothing here imports torch."""
        device = device_type(self.config["device"])
        if self.config["jpeg_decoder"] == "nvjpeg" and device != "cuda":
            raise ConfigError(f"backbone '{self.name}': jpeg_decoder 'nvjpeg' needs a CUDA device, "
                              f"this backbone runs on {device}; use jpeg_decoder: pil")
        if self._weights_identity is None:
            self._weights_identity = self.weights_identity()
        return {"weights": self._weights_identity, "preprocessing": self.preprocessing(),
                "device_type": device, "precision": precision_label(self.config["precision"], device),
                **{name: importlib.metadata.version(name) for name in ("torch", "torchvision", "timm")}}

    def preprocessing(self) -> dict[str, Any]:
        """The native config with the suite's overrides applied: resize, crop, interpolation, mean, std."""
        if self._preprocessing is None:
            self._preprocessing = self._resolve_preprocessing(self.native_data_config())
        return dict(self._preprocessing)

    def _resolve_preprocessing(self, native: dict[str, Any]) -> dict[str, Any]:
        crop = int(self.config["crop"] or native["input_size"][-1])
        resize = self.config["resize"] or math.floor(crop / native.get("crop_pct", 1.0))
        interpolation = self.config["interpolation"] or native.get("interpolation", "bicubic")
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(f"backbone '{self.name}': the native interpolation '{interpolation}' is not supported; "
                              f"set 'interpolation' to one of {', '.join(INTERPOLATIONS)}")
        return {
            "resize": int(resize), "crop": crop, "interpolation": interpolation,
            "mean": [float(v) for v in (self.config["mean"] or native["mean"])],
            "std": [float(v) for v in (self.config["std"] or native["std"])],
            "tta": bool(self.config["tta"]),
        }

    def data_config(self) -> dict[str, Any]:
        """timm-style data config of the preprocessing in use, for heads that build their own loaders."""
        prep = self.preprocessing()
        return {"input_size": (3, prep["crop"], prep["crop"]), "mean": tuple(prep["mean"]),
                "std": tuple(prep["std"]), "interpolation": prep["interpolation"],
                "crop_pct": prep["crop"] / prep["resize"], "crop_mode": "center"}

    def transform(self) -> Preprocess:
        prep = self.preprocessing()
        return Preprocess(prep["resize"], prep["crop"], prep["interpolation"], prep["mean"], prep["std"], prep["tta"])

    # ----- the network --------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return resolve_device(self.config["device"])

    def _autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        return resolve_precision(self.config["precision"], device)

    def pooled_model(self) -> PooledFeatures:
        """The frozen network in eval mode on the chosen device, built once."""
        if self._model is None:
            from skinbench.torch_modules import PooledFeatures

            self._model = PooledFeatures(self.build_model()).eval().to(self.device)
        return self._model

    def torch_module(self) -> torch.nn.Module:
        """A trainable copy on the CPU: fine-tuning it never changes this backbone's embeddings."""
        module = copy.deepcopy(self.pooled_model()).cpu().train()
        for p in module.parameters():
            p.requires_grad_(True)
        return module

    @property
    def feature_dim(self) -> int:
        return int(self.pooled_model().model.num_features)

    # ----- embedding ----------------------------------------------------------------------
    def embed(self, images: list) -> np.ndarray:
        size = int(self.config["batch_size"])
        return self.features(self.model_input([rgb_tensor(im) for im in images[i:i + size]])
                             for i in range(0, len(images), size))

    def embed_paths(self, paths: list[str]) -> np.ndarray:
        """Decode with DataLoader workers (``num_workers``) so decoding overlaps the forward passes."""
        from torch.utils.data import DataLoader

        from skinbench.torch_modules import ImageFiles, stack_when_possible

        workers = int(self.config["num_workers"])
        on_device = self._preprocesses_on_device()
        files = ImageFiles(list(paths), None if on_device else self.transform(),
                           jpeg_as_bytes=self.config["jpeg_decoder"] == "nvjpeg")
        loader = DataLoader(files, batch_size=int(self.config["batch_size"]), num_workers=workers,
                            collate_fn=stack_when_possible, pin_memory=self.device.type == "cuda",
                            persistent_workers=False, prefetch_factor=4 if workers else None)
        return self.features(self.model_input(batch) for batch in loader)

    def _preprocesses_on_device(self) -> bool:
        """Only CUDA: elsewhere the host is the device, and workers preprocess in parallel."""
        return self.device.type == "cuda"

    def model_input(self, batch: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """A collated batch as the model's input on its device: (B, 3, c, c), or (B, 10, 3, c, c) with TTA.

        Float batches were preprocessed in the workers; uint8 images (one tensor, or a list of
        images of different sizes or of JPEG bytes) are preprocessed here, on the device."""
        import torch

        device = self.device
        if torch.is_tensor(batch) and batch.is_floating_point():
            return to_device(batch, device)
        if torch.is_tensor(batch):
            return self.transform().batch(to_device(batch, device))
        return self.transform().batch(self._decoded_on(device, list(batch)))

    @staticmethod
    def _decoded_on(device: torch.device, items: list[torch.Tensor]) -> list[torch.Tensor]:
        """(3, H, W) uint8 images on ``device``; 1-D items are JPEG bytes, decoded there in one nvjpeg call."""
        encoded = [i for i, item in enumerate(items) if item.ndim == 1]
        out = [to_device(item, device) if item.ndim == 3 else item for item in items]
        if encoded:
            from torchvision.io import ImageReadMode, decode_jpeg

            for i, image in zip(encoded, decode_jpeg([items[i] for i in encoded], mode=ImageReadMode.RGB,
                                                     device=device)):
                out[i] = image
        return out

    def features(self, batches: Iterable[torch.Tensor]) -> np.ndarray:
        """Pooled features for model inputs of (B, 3, H, W), or (B, views, 3, H, W) averaged over views."""
        import torch

        model, device = self.pooled_model(), self.device
        out = []
        with torch.inference_mode(), autocast(device, self._autocast_dtype(device)):
            for batch in batches:
                batch = to_device(batch, device)
                if batch.ndim == 4:
                    out.append(model(batch).float())
                    continue
                # TTA: one forward per view keeps the batch at batch_size (10x larger batches run slower per image)
                total = sum(model(batch[:, v]).float() for v in range(batch.shape[1]))
                out.append(total / batch.shape[1])
        if not out:
            return np.zeros((0, self.feature_dim), np.float32)
        return torch.cat(out).cpu().numpy().astype(np.float32, copy=False)  # one device-to-host copy, at the end

    # ----- subclass hooks -----------------------------------------------------------------
    def build_model(self) -> torch.nn.Module:
        """A timm model with its weights loaded (``num_classes=0``)."""
        raise NotImplementedError

    def native_data_config(self) -> dict[str, Any]:
        """timm-style data config of the pretrained weights (input_size, mean, std, interpolation, crop_pct)."""
        raise NotImplementedError

    def weights_identity(self) -> dict[str, Any]:
        """What identifies the weights: file hash, hub id + file hash, or random init."""
        raise NotImplementedError


def timm_pool(pool: str | None) -> str | None:
    """timm's name for a pooling choice (``cls`` and ``mean`` are aliases)."""
    return POOL_ALIASES.get(pool, pool) if pool is not None else None
