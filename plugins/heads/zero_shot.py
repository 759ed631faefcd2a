"""Zero-shot classification with a vision-language backbone: no labelled training image is used.

Each class is the normalised mean text embedding of its prompts (templates × class descriptions,
open_clip's ``build_zero_shot_classifier``); an image's logits are the backbone's logit scale times
the cosine similarity to each class (Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision", ICML 2021). ``calibrate: temperature`` fits a temperature and a per-class
bias (a prior correction) on the validation fold only, by NLL: the decisions can then move, but only
validation labels were seen. With ``calibrate: none`` (default) the head reads no label at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field
from skinbench.sdk import hookimpl, Part, Prediction, softmax, unit_rows
from skinbench.plugins.heads._text_heads import TextHead, TextHeadParams

BIAS_PENALTY = 1e-2
"""Weak L2 penalty on the per-class biases: a class absent from a small validation fold keeps a bias near 0
instead of one driven to minus infinity."""
TEMPERATURE_BOUNDS = (0.05, 20.0)


@dataclass(frozen=True)
class LogitAdjustment:
    """softmax(logits / T + b): a temperature and a per-class log-prior shift, fitted on validation."""

    temperature: float = 1.0
    bias: tuple[float, ...] | None = None

    @classmethod
    def fit(cls, logits: np.ndarray, y: np.ndarray) -> "LogitAdjustment":
        import torch

        if len(y) == 0:
            return cls()
        z = torch.as_tensor(logits, dtype=torch.float64)
        target = torch.as_tensor(y, dtype=torch.long)
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.LBFGS([log_t, bias], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(z / log_t.exp() + bias, target) + BIAS_PENALTY * bias.square().sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        temperature = float(np.clip(float(log_t.detach().exp()), *TEMPERATURE_BOUNDS))
        shift = bias.detach().numpy()
        if not np.isfinite(temperature) or not np.isfinite(shift).all():
            return cls()
        return cls(temperature, tuple(float(b) for b in shift))

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        shifted = logits / self.temperature
        return shifted + np.asarray(self.bias) if self.bias is not None else shifted


class ZeroShotHead(TextHead):
    """Cosine similarity to class prompt embeddings; trains nothing (optionally calibrated on validation)."""

    name = "zero-shot"

    class Params(TextHeadParams):
        calibrate: Literal["none", "temperature"] = Field(
            "none", description="none: no label is read; temperature: a temperature and class biases fitted on the "
                                "validation fold (Guo et al., 2017)")

    meta = {"license": "Apache-2.0",
            "citation": "Radford et al., Learning Transferable Visual Models From Natural Language Supervision "
                        "(ICML 2021); Ilharco et al., OpenCLIP, build_zero_shot_classifier"}

    @property
    def labelled_images(self) -> str:
        return "none" if self.config["calibrate"] == "none" else "validation"

    def fit(self, train: Part, val: Part, n_classes: int, seed: int, backbone=None, classes=None) -> None:
        self.weights, self.scale = self.text_prior(backbone, classes)
        self.adjust = LogitAdjustment()
        if self.config["calibrate"] == "temperature":
            self.adjust = LogitAdjustment.fit(self._logits(val.x), val.y)

    def _logits(self, x: np.ndarray) -> np.ndarray:
        return self.scale * unit_rows(np.asarray(x, dtype=np.float64)) @ self.weights.T

    def predict(self, part: Part) -> Prediction:
        proba = softmax(self.adjust(self._logits(part.x)))
        return Prediction(proba=proba, labels=proba.argmax(axis=1))


@hookimpl
def skinbench_heads():
    return [ZeroShotHead]
