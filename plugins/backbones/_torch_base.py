"""What every torch backbone shares: preprocessing, TTA, devices, batching, pooled features.

A subclass says how to build its network (:meth:`TorchBackbone.build_model`, a timm model
whose ``forward_features`` + ``forward_head(pre_logits=True)`` give pooled features), what
its native preprocessing is, and which weights it holds. Everything else lives here, so the
timm, PanDerm and EfficientNet-Lite0 backbones embed, cache and fine-tune the same way.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Iterable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from skinbench.api import Backbone, ConfigError
from skinbench.devices import autocast, resolve_device, resolve_precision
from skinbench.images import load_rgb

"""Parameters that change speed, not embeddings: kept out of cache keys."""

COMMON_PARAMS: dict[str, Any] = {
    "tta": False,          # FiveCrop + horizontal flips, ten views averaged (thesis Table 4.1)
    "resize": None,        # shorter side before cropping; default crop / crop_pct of the native config
    "crop": None,          # square crop size; default the native input size
    "mean": None,          # normalisation; default the native config
    "std": None,
    "interpolation": None,  # bilinear | bicubic | nearest; default the native config
    "device": "auto",      # auto | cpu | cuda[:N] | mps
    "precision": "auto",   # auto (bf16/fp16 autocast on CUDA, fp32 elsewhere) | fp32 | fp16 | bf16
    "batch_size": 32,
    "num_workers": 0,      # DataLoader workers decoding images while the model computes
}


class PooledFeatures(torch.nn.Module):
    """A timm model seen as images -> pooled pre-logit features (B, D)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


class ImageFiles(Dataset):
    """Decodes and preprocesses image files, so DataLoader workers can do it in parallel."""

    def __init__(self, paths: list[str], transform):
        self.paths = paths
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(load_rgb(self.paths[index]))


class Preprocess:
    """Resize the shorter side, then one centre crop or ten TTA views, as normalised tensors.

    Equals timm's eval transform (``create_transform(**data_config)``) when ``tta`` is off.
    """

    def __init__(self, resize: int, crop: int, interpolation: str, mean, std, tta: bool):
        self.resize, self.crop, self.tta = resize, crop, tta
        self.interpolation = InterpolationMode(interpolation)
        self.mean, self.std = list(mean), list(std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = TF.resize(image, self.resize, interpolation=self.interpolation)
        if not self.tta:
            return self._normalise(TF.to_tensor(TF.center_crop(image, self.crop)))
        crops = torch.stack([TF.to_tensor(c) for c in TF.five_crop(image, self.crop)])
        return self._normalise(torch.cat([crops, crops.flip(-1)]))

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return TF.normalize(x, self.mean, self.std)


class TorchBackbone(Backbone):
    """Base of torch backbones; subclasses implement the three hooks at the bottom."""

    params = COMMON_PARAMS

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self._model: PooledFeatures | None = None
        self._weights_identity: dict | None = None
        self._preprocessing: dict | None = None

    # ----- identity and preprocessing -----------------------------------------------------
    def artefacts(self) -> dict[str, Any]:
        """Weights content, resolved preprocessing, and the device type, precision and library
        versions actually used (bf16 on CUDA and fp32 on the CPU give different embeddings)."""
        import timm

        if self._weights_identity is None:
            self._weights_identity = self.weights_identity()
        dtype = resolve_precision(self.config["precision"], self.device)
        return {"weights": self._weights_identity, "preprocessing": self.preprocessing(),
                "device_type": self.device.type, "precision": str(dtype).removeprefix("torch.") if dtype else "float32",
                "torch": torch.__version__, "timm": timm.__version__}

    def preprocessing(self) -> dict[str, Any]:
        """The native config with the suite's overrides applied: resize, crop, interpolation, mean, std."""
        if self._preprocessing is None:
            self._preprocessing = self._resolve_preprocessing(self.native_data_config())
        return dict(self._preprocessing)

    def _resolve_preprocessing(self, native: dict[str, Any]) -> dict[str, Any]:
        crop = int(self.config["crop"] or native["input_size"][-1])
        resize = self.config["resize"] or math.floor(crop / native.get("crop_pct", 1.0))
        return {
            "resize": int(resize), "crop": crop,
            "interpolation": self.config["interpolation"] or native.get("interpolation", "bicubic"),
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

    def pooled_model(self) -> PooledFeatures:
        """The frozen network in eval mode on the chosen device, built once."""
        if self._model is None:
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
    def embed(self, images: list[Image.Image]) -> np.ndarray:
        transform = self.transform()
        size = int(self.config["batch_size"])
        batches = (torch.stack([transform(im) for im in images[i:i + size]]) for i in range(0, len(images), size))
        return self.features(batches)

    def embed_paths(self, paths: list[str]) -> np.ndarray:
        """Decode with DataLoader workers (``num_workers``) so decoding overlaps the forward passes."""
        workers = int(self.config["num_workers"])
        loader = DataLoader(ImageFiles(list(paths), self.transform()), batch_size=int(self.config["batch_size"]),
                            num_workers=workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=False, prefetch_factor=4 if workers else None)
        return self.features(loader)

    def features(self, batches: Iterable[torch.Tensor]) -> np.ndarray:
        """Pooled features for batches of (B, 3, H, W), or (B, views, 3, H, W) averaged over views."""
        model, device = self.pooled_model(), self.device
        dtype = resolve_precision(self.config["precision"], device)
        out = []
        with torch.inference_mode(), autocast(device, dtype):
            for batch in batches:
                batch = batch.to(device, non_blocking=True)
                if batch.ndim == 4:
                    out.append(model(batch).float().cpu().numpy())
                    continue
                # TTA: one forward per view keeps the batch at batch_size (10x larger batches run slower per image)
                total = sum(model(batch[:, v]).float() for v in range(batch.shape[1]))
                out.append((total / batch.shape[1]).cpu().numpy())
        if not out:
            return np.zeros((0, self.feature_dim), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

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


def check_pool(pool: str | None, plugin: str) -> str | None:
    """timm's name for a pooling choice; ``cls`` and ``mean`` are accepted as aliases."""
    aliases = {"cls": "token", "mean": "avg"}
    known = ("token", "avg", "max", "avgmax", "map")
    if pool is None:
        return None
    name = aliases.get(pool, pool)
    if name not in known:
        raise ConfigError(f"backbone '{plugin}': pool '{pool}' is unknown; use one of cls, mean, {', '.join(known)}")
    return name
