"""A one-hidden-layer MLP on frozen embeddings (seed 004: DINO features -> MLP, eczema severity)."""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from skinbench.api import ConfigError, Head, Part, Prediction
from skinbench.calibration import macro_f1, softmax
from skinbench.devices import resolve_device
from skinbench.hookspecs import hookimpl
from skinbench.plugins.heads._torch_utils import balanced_class_weights, seeded_generator, single_cpu_thread

CLASS_WEIGHTS = ("none", "balanced")


class MLPHead(Head):
    """One hidden layer + dropout, Adam, cross-entropy; keeps the epoch with the best val macro-F1."""

    name = "mlp"
    params = {
        "hidden": 128,
        "dropout": 0.3,
        "lr": 1e-4,
        "weight_decay": 1e-5,  # seed 004: "a small weight decay factor", value not given
        "epochs": 50,
        "batch_size": 16,
        "standardize": True,
        "class_weight": "none",
        "select_on_val": True,
        "device": "auto",
    }
    meta = {
        "license": "Apache-2.0",
        "citation": "Self-supervised learning for eczema severity with SegGPT + DINO features and an MLP (seed 004)",
    }

    runtime_params = frozenset({"device", "progress"})
    """batch_size is not among them: it changes the optimisation, hence the result."""

    def artefacts(self) -> dict:
        return {"device_type": resolve_device(self.config["device"]).type, "torch": torch.__version__}

    def __init__(self, **overrides):
        super().__init__(**overrides)
        if self.config["class_weight"] not in CLASS_WEIGHTS:
            raise ConfigError(f"head 'mlp': class_weight must be one of {', '.join(CLASS_WEIGHTS)}, "
                              f"got '{self.config['class_weight']}'")

    def fit(self, train: Part, val: Part, n_classes: int, seed: int, backbone=None) -> None:
        self.device = resolve_device(self.config["device"])
        with single_cpu_thread(self.device):
            self._fit(train, val, n_classes, seed)

    def _fit(self, train: Part, val: Part, n_classes: int, seed: int) -> None:
        cfg = self.config
        x_train = np.asarray(train.x, dtype=np.float32)
        self.mean, self.scale = standardizer(x_train, cfg["standardize"])
        generator = seeded_generator(seed)
        self.net = nn.Sequential(
            nn.Linear(x_train.shape[1], cfg["hidden"]), nn.ReLU(), nn.Dropout(cfg["dropout"]),
            nn.Linear(cfg["hidden"], n_classes),
        ).to(self.device)
        weights = balanced_class_weights(train.y, n_classes) if cfg["class_weight"] == "balanced" else None
        loss_fn = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(self.device))
        optimiser = torch.optim.Adam(self.net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        inputs = torch.as_tensor(self._standardized(x_train), device=self.device)
        targets = torch.as_tensor(train.y, dtype=torch.long, device=self.device)
        selecting = cfg["select_on_val"] and len(val) > 0
        best_score, best_state = -1.0, None
        for _ in range(cfg["epochs"]):
            self._train_one_epoch(inputs, targets, loss_fn, optimiser, generator)
            if selecting:
                score = macro_f1(val.y, self._proba(val.x).argmax(axis=1))
                if score >= best_score:  # ties keep the later, longer-trained epoch
                    best_score, best_state = score, copy.deepcopy(self.net.state_dict())
        if best_state is not None:
            self.net.load_state_dict(best_state)

    def _train_one_epoch(self, inputs, targets, loss_fn, optimiser, generator) -> None:
        self.net.train()
        order = torch.randperm(len(inputs), generator=generator).to(self.device)
        for batch in order.split(self.config["batch_size"]):
            optimiser.zero_grad()
            loss_fn(self.net(inputs[batch]), targets[batch]).backward()
            optimiser.step()

    def _standardized(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - self.mean) / self.scale).astype(np.float32)

    def predict(self, part: Part) -> Prediction:
        with single_cpu_thread(self.device):
            proba = self._proba(part.x)
        return Prediction(proba=proba, labels=proba.argmax(axis=1))

    def _proba(self, x: np.ndarray) -> np.ndarray:
        self.net.eval()
        with torch.no_grad():
            logits = self.net(torch.as_tensor(self._standardized(x), device=self.device)).cpu().numpy()
        return softmax(logits)


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
