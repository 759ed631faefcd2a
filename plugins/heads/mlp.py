"""A one-hidden-layer MLP on frozen embeddings (Kumar & Aran: DINO features -> MLP, eczema severity)."""
from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt
from skinbench.sdk import (
    DecisionRule,
    device_type,
    DeviceName,
    Head,
    hookimpl,
    macro_f1,
    Part,
    PluginParams,
    Prediction,
    resolve_device,
)
from skinbench.plugins.heads._torch_utils import (
    BestWeights,
    balanced_class_weights,
    fused_optimiser_supported,
    seeded_generator,
    single_cpu_thread,
)

if TYPE_CHECKING:
    import torch


class MLPHead(Head):
    """One hidden layer + dropout, Adam, cross-entropy; keeps the epoch with the best val macro-F1."""

    name = "mlp"

    class Params(PluginParams):
        hidden: PositiveInt = 128
        dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.3
        lr: PositiveFloat = 1e-4
        weight_decay: NonNegativeFloat = Field(1e-5, description='Kumar & Aran: "a small weight decay factor", '
                                                                  "value not given")
        epochs: PositiveInt = 50
        batch_size: PositiveInt = 16
        standardize: bool = True
        class_weight: Literal["none", "balanced"] = "none"
        select_on_val: bool = Field(True, description="keep the epoch with the best validation macro-F1")
        temperature: bool = Field(False, description="temperature scaling fitted on validation (Guo et al., 2017)")
        device: DeviceName = "auto"

    meta = {
        "license": "Apache-2.0",
        "citation": "Self-supervised learning for eczema severity with SegGPT + DINO features and an MLP (Kumar & Aran, 'Automated Measurement of Eczema Severity with Self-Supervised Learning')",
    }

    runtime_params = frozenset({"device"})
    """batch_size is not among them: it changes the optimisation, hence the result."""

    def artefacts(self) -> dict:
        return {"device_type": device_type(self.config["device"]), "torch": importlib.metadata.version("torch")}

    def fit(self, train: Part, val: Part, n_classes: int, seed: int, backbone=None) -> None:
        self.device = resolve_device(self.config["device"])
        with single_cpu_thread(self.device):
            self._fit(train, val, n_classes, seed)

    def _fit(self, train: Part, val: Part, n_classes: int, seed: int) -> None:
        import torch
        from torch import nn

        cfg = self.config
        self.mean, self.scale = standardizer(np.asarray(train.x, dtype=np.float32), cfg["standardize"])
        generator = seeded_generator(seed)
        self.net = nn.Sequential(
            nn.Linear(train.x.shape[1], cfg["hidden"]), nn.ReLU(), nn.Dropout(cfg["dropout"]),
            nn.Linear(cfg["hidden"], n_classes),
        ).to(self.device)
        weights = balanced_class_weights(train.y, n_classes) if cfg["class_weight"] == "balanced" else None
        loss_fn = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(self.device))
        optimiser = torch.optim.Adam(self.net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"],
                                     fused=fused_optimiser_supported(self.device))
        inputs, val_inputs = self._inputs(train.x), self._inputs(val.x) if len(val) else None
        targets = torch.as_tensor(train.y, dtype=torch.long, device=self.device)
        best = BestWeights([self.net])
        for _ in range(cfg["epochs"]):
            self._train_one_epoch(inputs, targets, loss_fn, optimiser, generator)
            if cfg["select_on_val"] and val_inputs is not None:
                best.offer(macro_f1(val.y, self._logits(val_inputs).argmax(axis=1)))
        best.restore()
        val_logits = self._logits(val_inputs) if val_inputs is not None else np.zeros((0, n_classes))
        self.decision = DecisionRule.fit(val_logits, val.y, temperature=cfg["temperature"], threshold=False)

    def _train_one_epoch(self, inputs, targets, loss_fn, optimiser, generator) -> None:
        import torch

        self.net.train()
        order = torch.randperm(len(inputs), generator=generator).to(self.device)
        for batch in order.split(self.config["batch_size"]):
            optimiser.zero_grad()
            loss_fn(self.net(inputs[batch]), targets[batch]).backward()
            optimiser.step()

    def _inputs(self, x: np.ndarray) -> torch.Tensor:
        """Standardised float32 features on the device, converted once per part (not per epoch)."""
        import torch

        standardized = (np.asarray(x, dtype=np.float32) - self.mean) / self.scale
        return torch.as_tensor(standardized.astype(np.float32), device=self.device)

    def _logits(self, inputs: torch.Tensor) -> np.ndarray:
        import torch

        self.net.eval()
        with torch.inference_mode():
            return self.net(inputs).float().cpu().numpy()

    def predict(self, part: Part) -> Prediction:
        with single_cpu_thread(self.device):
            logits = self._logits(self._inputs(part.x))
        return self.decision.predict(logits)


def standardizer(x: np.ndarray, enabled: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale from the training part (identity when disabled);
    constant features keep scale 1 so they do not blow up."""
    if not enabled:
        return np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32)
    scale = x.std(axis=0)
    return x.mean(axis=0), np.where(scale > 1e-8, scale, 1.0).astype(np.float32)


@hookimpl
def skinbench_heads():
    return [MLPHead]
