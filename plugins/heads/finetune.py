"""Two-phase fine-tuning of a torch backbone with a StrongHead (the thesis, section 4.3.2, Table 4.2).

Warm-up trains the head on a frozen encoder; fine-tuning then unfreezes the last
blocks. Validation (with TTA) picks the best epoch and stops early; a temperature
and, for binary tasks, a decision threshold are then fitted on validation.
"""
from __future__ import annotations

import copy
import importlib.metadata
import math
from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
)
from skinbench.sdk import (
    autocast,
    ConfigError,
    DecisionRule,
    device_type,
    DeviceName,
    Head,
    hookimpl,
    load_rgb,
    macro_f1,
    Part,
    PluginError,
    PluginParams,
    precision_label,
    PrecisionName,
    Prediction,
    Preprocess,
    resolve_device,
    resolve_precision,
)
from skinbench.plugins.heads._torch_utils import (
    BestWeights,
    balanced_class_weights,
    grad_scaler,
    seeded_generator,
)
from tqdm.auto import tqdm

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, WeightedRandomSampler

CropFraction = Annotated[float, Field(gt=0.0, le=1.0)]
"""A share of the image area kept by a random crop."""


class FineTuneHead(Head):
    """Fine-tunes the backbone's last blocks with a cosine StrongHead, TTA, temperature and threshold."""

    name = "finetune"
    needs_images = True
    code_modules = ("skinbench.plugins.heads._finetune_nets",)

    class Params(PluginParams):
        image_size: PositiveInt = Field(224, description="crop size (CROP_TO)")
        resize: PositiveInt = Field(384, description="shorter side before cropping (RESIZE_TO), at least image_size")
        crop_scale: Annotated[list[CropFraction], Field(min_length=2, max_length=2)] = [0.85, 1.0]
        head_width: PositiveInt = 1024
        head_dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.35
        head_blocks: NonNegativeInt = 2
        cosine_scale: Annotated[list[PositiveFloat], Field(min_length=2, max_length=2)] = [16.0, 30.0]
        minority_fraction: Annotated[float, Field(gt=0.0, lt=1.0, description="binary: share of the minority "
                                                                                "class per batch")] = 0.45
        jitter_p_minority: Annotated[float, Field(ge=0.0, le=1.0, description="binary: photometric jitter "
                                                                                "probability of the minority")] = 0.8
        jitter_p_majority: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
        label_smoothing_binary: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.05
        label_smoothing_multiclass: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
        warmup_epochs: NonNegativeInt = 3
        warmup_lr: PositiveFloat = 3e-4
        finetune_epochs: NonNegativeInt = 15
        finetune_lr: PositiveFloat = 3e-5
        weight_decay: NonNegativeFloat = 2e-4
        unfreeze_blocks: NonNegativeInt = 6
        grad_clip: PositiveFloat = 1.0
        patience: PositiveInt = 5
        batch_size: PositiveInt = 8
        tta: bool = True
        device: DeviceName = "auto"
        precision: PrecisionName = "auto"
        num_workers: NonNegativeInt = 0
        progress: bool = True

        @field_validator("crop_scale", "cosine_scale")
        @classmethod
        def _ascending(cls, pair: list[float]) -> list[float]:
            if pair[0] > pair[1]:
                raise ValueError("give [low, high] with low <= high")
            return pair

    meta = {
        "license": "Apache-2.0",
        "citation": "Seed 000 thesis, section 4.3.2 / Table 4.2 (PanDerm-L and DINOv2-L fine-tuning recipe)",
    }

    runtime_params = frozenset({"device", "precision", "num_workers", "progress"})
    """batch_size is not among them: it changes the optimisation, hence the result."""

    def artefacts(self) -> dict:
        device = device_type(self.config["device"])
        return {"device_type": device, "precision": precision_label(self.config["precision"], device),
                "torch": importlib.metadata.version("torch")}

    def __init__(self, **overrides):
        super().__init__(**overrides)
        if self.config["resize"] < self.config["image_size"]:
            raise ConfigError(f"head 'finetune': resize ({self.config['resize']}) must be at least "
                              f"image_size ({self.config['image_size']}) so crops fit inside the image")

    # ----------------------------------------------------------------- fit
    def fit(self, train: Part, val: Part, n_classes: int, seed: int, backbone=None) -> None:
        import torch
        from torch import nn

        from ._finetune_nets import StrongHead

        cfg = self.config
        if backbone is None or not hasattr(backbone, "torch_module"):
            kind = "no backbone" if backbone is None else f"backbone '{backbone.name}'"
            raise PluginError(f"head 'finetune' needs a torch backbone exposing torch_module(), "
                              f"feature_dim and data_config(); got {kind}")
        self.device = resolve_device(cfg["device"])
        self.amp_dtype = resolve_precision(cfg["precision"], self.device)
        generator = seeded_generator(seed)
        self.views = ImageViews(backbone.data_config(), cfg)
        encoder = copy.deepcopy(backbone.torch_module())  # the runner's backbone stays untouched
        head = StrongHead(backbone.feature_dim, n_classes, cfg["head_width"], cfg["head_dropout"],
                          cfg["head_blocks"], tuple(cfg["cosine_scale"]))
        # fp32 master weights even if the backbone holds fp16 ones; autocast does mixed precision
        self.net = nn.Sequential(encoder, head).to(self.device, torch.float32)
        self.tail = trainable_tail(encoder, cfg["unfreeze_blocks"])
        train_images, val_images = self._load(train.paths, "train"), self._load(val.paths, "val")
        self._check_input_size(backbone, train_images[:1])

        binary = n_classes == 2
        loader = self._train_loader(train_images, train.y, n_classes, generator)
        loss_fn = nn.CrossEntropyLoss(
            weight=None if binary else balanced_class_weights(train.y, n_classes).to(self.device),
            label_smoothing=cfg["label_smoothing_binary" if binary else "label_smoothing_multiclass"],
        )
        self.net[0].requires_grad_(False)
        best = BestWeights([head, *self.tail])
        # warm-up keeps its best epoch but never stops early; patience applies to fine-tuning
        self._run_phase("warm-up", [head], cfg["warmup_lr"], cfg["warmup_epochs"], math.inf,
                        loader, loss_fn, val_images, val.y, best)
        self._run_phase("fine-tune", [head, *self.tail], cfg["finetune_lr"], cfg["finetune_epochs"], cfg["patience"],
                        loader, loss_fn, val_images, val.y, best)
        best.restore()

        self.decision = DecisionRule.fit(self._logits(val_images), val.y, temperature=True, threshold=True)

    def _run_phase(self, phase, modules, lr, epochs, patience, loader, loss_fn, val_images, val_y, best) -> None:
        """Train ``modules`` for up to ``epochs``, stopping after ``patience`` epochs without a better val score."""
        import torch

        cfg = self.config
        best.epochs_since_best = 0
        for module in modules:
            module.requires_grad_(True)
        params = [p for m in modules for p in m.parameters()]
        optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=cfg["weight_decay"])
        scaler = grad_scaler(self.device, self.amp_dtype)
        with tqdm(total=epochs, desc=f"finetune {phase}", unit="epoch", disable=not cfg["progress"], leave=False) as bar:
            for _ in range(epochs):
                self._set_train_mode(modules)
                for images, targets in loader:
                    self._step(images, targets, params, loss_fn, optimiser, scaler)
                bar.update()
                if len(val_y) == 0:
                    continue  # nothing to select on: keep the last epoch
                score = macro_f1(val_y, self._logits(val_images).argmax(axis=1))
                best.offer(score)
                bar.set_postfix(val_macro_f1=f"{score:.3f}", best=f"{best.score:.3f}")
                if best.epochs_since_best >= patience:
                    break

    def _step(self, images, targets, params, loss_fn, optimiser, scaler) -> None:
        from torch import nn

        images, targets = images.to(self.device), targets.to(self.device)
        optimiser.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp_dtype):
            logits = self.net(images)
        scaler.scale(loss_fn(logits.float(), targets)).backward()
        scaler.unscale_(optimiser)
        nn.utils.clip_grad_norm_(params, self.config["grad_clip"])
        scaler.step(optimiser)
        scaler.update()

    def _set_train_mode(self, modules) -> None:
        """Only trained modules run in train mode, so frozen normalisation statistics stay fixed."""
        self.net.eval()
        for module in modules:
            module.train()

    def _train_loader(self, images, y, n_classes, generator) -> DataLoader:
        from torch.utils.data import DataLoader

        from ._finetune_nets import TrainImages

        cfg = self.config
        y = np.asarray(y, dtype=np.int64)
        counts = np.bincount(y, minlength=n_classes)
        binary_with_both = n_classes == 2 and counts.min() > 0
        jitter_p = np.zeros(n_classes)
        sampler = None
        if binary_with_both:
            minority = int(np.argmin(counts))
            jitter_p[:] = cfg["jitter_p_majority"]
            jitter_p[minority] = cfg["jitter_p_minority"]
            sampler = minority_sampler(y, minority, cfg["minority_fraction"], generator)
        dataset = TrainImages(images, y, self.views, jitter_p)
        # a trailing batch of one breaks BatchNorm layers in CNN encoders
        drop_last = len(images) > cfg["batch_size"]
        return DataLoader(dataset, batch_size=cfg["batch_size"], sampler=sampler, shuffle=sampler is None,
                          generator=generator, drop_last=drop_last, num_workers=cfg["num_workers"])

    # ------------------------------------------------------------- predict
    def predict(self, part: Part) -> Prediction:
        return self.decision.predict(self._logits(self._load(part.paths, "predict")))

    def _logits(self, images: list) -> np.ndarray:
        """Per-image logits, averaged over the TTA views (FiveCrop x hflip, or one centre crop)."""
        import torch

        self.net.eval()
        n_classes = self.net[1].classifier.weight.shape[0]
        out = []
        with torch.no_grad():
            for start in range(0, len(images), self.config["batch_size"]):
                batch = torch.stack([self.views.evaluation(img) for img in images[start:start + self.config["batch_size"]]])
                views = batch.shape[1] if batch.ndim == 5 else 1
                with autocast(self.device, self.amp_dtype):
                    logits = self.net(batch.reshape(-1, *batch.shape[-3:]).to(self.device))
                out.append(logits.float().reshape(len(batch), views, -1).mean(dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)

    def _load(self, paths, what: str) -> list:
        """Decode and resize every image once; per-epoch augmentation then works on small images."""
        bar = tqdm(paths, desc=f"finetune load {what}", unit="img", disable=not self.config["progress"], leave=False)
        return [self.views.resize(load_rgb(p)) for p in bar]

    def _check_input_size(self, backbone, images) -> None:
        """Fail early, with the fix, when the encoder rejects the configured crop size."""
        try:
            self._logits(images)
        except (RuntimeError, AssertionError) as exc:
            raise PluginError(
                f"head 'finetune': backbone '{backbone.name}' failed on {self.config['image_size']}px crops ({exc}); "
                f"set the head's image_size to the backbone's input size {backbone.data_config().get('input_size')}"
            ) from exc


class ImageViews:
    """Training and evaluation views: the backbone's normalisation and interpolation with the
    thesis's resize, random crop, flip and minority jitter (training) and TTA (evaluation)."""

    def __init__(self, data_config: dict, cfg: dict):
        from torchvision import transforms

        interpolation = transforms.InterpolationMode(data_config.get("interpolation", "bicubic"))
        size = cfg["image_size"]
        self.resize = transforms.Resize(cfg["resize"], interpolation=interpolation)
        self.augment = transforms.Compose([
            transforms.RandomResizedCrop(size, scale=tuple(cfg["crop_scale"]), interpolation=interpolation),
            transforms.RandomHorizontalFlip(),
        ])
        self.jitter = transforms.Compose([
            transforms.ColorJitter(brightness=0.3, contrast=0.3),
            transforms.RandomAdjustSharpness(sharpness_factor=2.0, p=0.5),
            transforms.GaussianBlur(kernel_size=3, sigma=(0.1, 1.5)),
        ])
        self.to_tensor = transforms.Compose([
            transforms.ToTensor(), transforms.Normalize(data_config["mean"], data_config["std"]),
        ])
        # (3, H, W) centre crop, or (10, 3, H, W) FiveCrop + mirrors: the backbones' own eval views
        self.evaluation = Preprocess(cfg["resize"], size, interpolation.value, data_config["mean"],
                                     data_config["std"], cfg["tta"])

    def training(self, image, jitter_p: float) -> torch.Tensor:
        import torch

        image = self.augment(image)
        if jitter_p > 0 and torch.rand(()) < jitter_p:
            image = self.jitter(image)
        return self.to_tensor(image)


def minority_sampler(y: np.ndarray, minority: int, fraction: float, generator) -> WeightedRandomSampler:
    """Draws (with replacement) so that about ``fraction`` of each batch is the minority class."""
    import torch
    from torch.utils.data import WeightedRandomSampler

    is_minority = y == minority
    weights = np.where(is_minority, fraction / is_minority.sum(), (1 - fraction) / (~is_minority).sum())
    return WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), num_samples=len(y),
                                 replacement=True, generator=generator)


# --------------------------------------------------------- which weights train
def trainable_tail(encoder: nn.Module, n_blocks: int) -> list[nn.Module]:
    """The encoder modules unfrozen in the fine-tuning phase.

    The first submodule with a ``blocks`` (ViT) or ``stages`` (ConvNeXt-like CNN)
    container gives its last ``n_blocks`` entries plus every module registered after
    that container (final ``norm``/``fc_norm``/pooling). Other encoders (e.g. ResNet)
    unfreeze their last ``n_blocks`` children holding weights, looking through wrappers
    with a single such child; there ``unfreeze_blocks`` counts layers like ``layer4``.
    """
    from torch import nn

    n_blocks = max(int(n_blocks), 0)
    for parent in encoder.modules():
        children = list(parent.named_children())
        names = [name for name, _ in children]
        for attr in ("blocks", "stages"):
            if attr in names and isinstance(parent.get_submodule(attr), (nn.Sequential, nn.ModuleList)):
                container = list(parent.get_submodule(attr))
                after = [m for _, m in children[names.index(attr) + 1:] if has_parameters(m)]
                return container[len(container) - min(n_blocks, len(container)):] + after
    owners = children_with_parameters(encoder)
    while len(owners) == 1 and children_with_parameters(owners[0]):
        owners = children_with_parameters(owners[0])
    return owners[len(owners) - min(n_blocks, len(owners)):]


def children_with_parameters(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.children() if has_parameters(m)]


def has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


@hookimpl
def skinbench_heads():
    return [FineTuneHead]
