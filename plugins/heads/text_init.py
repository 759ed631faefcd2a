"""A linear probe that starts from the zero-shot classifier and is pulled back towards it while it learns.

The class prototypes start at the class text embeddings (zero-shot initialisation); logits are the
backbone's logit scale times the cosine between the image embedding and each prototype; training
minimises the (class-balanced) cross-entropy on the training part plus Σ_c λ_c ‖w_c − t_c‖², an L2
pull of each prototype w_c towards its text embedding t_c. This is the constrained linear probe of
Silva-Rodríguez, Hajimiri, Ben Ayed and Dolz, "A Closer Look at the Few-Shot Adaptation of Large
Vision-Language Models" (CLAP, CVPR 2024): with ``pull: clap`` (default) λ_c is the mean zero-shot
probability of class c over its training images, CLAP's class-adaptive initialisation of the
multipliers, kept fixed (CLAP's augmented-Lagrangian updates of λ are not run), so no validation
search is needed; a number sets one λ for every class. With few labels the head stays near the
zero-shot classifier, with many it becomes a linear probe.
"""
from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt
from skinbench.sdk import DecisionRule, hookimpl, Part, Prediction, unit_rows
from skinbench.plugins.heads._text_heads import TextHead, TextHeadParams
from skinbench.plugins.heads._torch_utils import balanced_class_weights, seeded_generator, single_cpu_thread

if TYPE_CHECKING:
    import torch

ABSENT_CLASS_PULL = 1.0
"""λ of a class without training images: its prototype has no evidence to move on, so it is held at the text."""


class TextInitHead(TextHead):
    """Cosine linear probe initialised from class text embeddings, L2-pulled towards them (CLAP)."""

    name = "text-init"

    class Params(TextHeadParams):
        pull: Literal["clap"] | NonNegativeFloat = Field(
            "clap", description="clap: per-class λ = mean zero-shot probability of the class on its training "
                                "images; a number: one λ for all classes (0: a plain linear probe)")
        epochs: PositiveInt = Field(300, description="full-batch Adam steps")
        lr: PositiveFloat = 1e-3
        class_weight: Literal["none", "balanced"] = "balanced"
        tune_threshold: bool = Field(True, description="binary tasks: decision threshold tuned on validation")
        temperature: bool = Field(False, description="temperature scaling fitted on validation (Guo et al., 2017)")

    meta = {"license": "Apache-2.0",
            "citation": "Silva-Rodríguez, Hajimiri, Ben Ayed, Dolz: A Closer Look at the Few-Shot Adaptation of "
                        "Large Vision-Language Models (CVPR 2024)"}

    def artefacts(self) -> dict:
        return {**super().artefacts(), "torch": importlib.metadata.version("torch")}

    def fit(self, train: Part, val: Part, n_classes: int, seed: int, backbone=None, classes=None) -> None:
        import torch

        text, self.scale = self.text_prior(backbone, classes)
        seeded_generator(seed)
        with single_cpu_thread(torch.device("cpu")):
            self.prototypes = self._train(torch.as_tensor(text), torch.as_tensor(unit_rows(np.asarray(train.x, np.float64))),
                                          torch.as_tensor(train.y, dtype=torch.long), n_classes)
        val_logits = self._logits(val.x) if len(val) else np.zeros((0, n_classes))
        self.decision = DecisionRule.fit(val_logits, val.y, temperature=self.config["temperature"],
                                         threshold=self.config["tune_threshold"])

    def _train(self, text: torch.Tensor, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        cfg = self.config
        pull = self._pull(text, x, y, n_classes)
        weights = torch.nn.Parameter(text.clone())
        class_weight = balanced_class_weights(y.numpy(), n_classes).double() if cfg["class_weight"] == "balanced" \
            else None
        optimiser = torch.optim.Adam([weights], lr=cfg["lr"])
        for _ in range(cfg["epochs"] if len(y) else 0):
            optimiser.zero_grad()
            logits = self.scale * x @ F.normalize(weights, dim=1).T
            loss = F.cross_entropy(logits, y, weight=class_weight) + (pull * (weights - text).square().sum(1)).sum()
            loss.backward()
            optimiser.step()
        return F.normalize(weights.detach(), dim=1).numpy()

    def _pull(self, text: torch.Tensor, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
        """λ per class: CLAP's mean zero-shot probability of the true class, or the configured constant."""
        import torch

        if self.config["pull"] != "clap":
            return torch.full((n_classes,), float(self.config["pull"]), dtype=torch.float64)
        zero_shot = torch.softmax(self.scale * x @ text.T, dim=1)
        pull = torch.full((n_classes,), ABSENT_CLASS_PULL, dtype=torch.float64)
        for c in range(n_classes):
            mine = y == c
            if mine.any():
                pull[c] = zero_shot[mine, c].mean()
        return pull

    def _logits(self, x: np.ndarray) -> np.ndarray:
        return self.scale * unit_rows(np.asarray(x, dtype=np.float64)) @ self.prototypes.T

    def predict(self, part: Part) -> Prediction:
        return self.decision.predict(self._logits(part.x))


@hookimpl
def skinbench_heads():
    return [TextInitHead]
