"""Post-hoc decisions fitted on the validation part: temperature and binary threshold.

One implementation shared by every head (the thesis: "temperature T fitted on
validation", "binary threshold tuned on validation, grid 0.2-0.8"): a head hands its
validation logits to :meth:`DecisionRule.fit` and its test logits to :meth:`DecisionRule.predict`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skinbench.api import Prediction

DEFAULT_THRESHOLDS = np.round(np.arange(0.2, 0.81, 0.05), 2)
TEMPERATURE_BOUNDS = (0.05, 20.0)
"""A tiny or one-class validation part can drive the NLL optimum to T -> 0 or infinity;
the bounds keep the fitted probabilities finite and usable."""


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 over the classes seen in either array; 0 for empty input."""
    if len(y_true) == 0:
        return 0.0
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def apply_threshold(proba: np.ndarray, threshold: float) -> np.ndarray:
    """Binary decisions: class 1 where P(class 1) >= threshold.

    ``proba`` is either (n, 2) class probabilities or (n,) positive-class probabilities.
    """
    proba = np.asarray(proba, dtype=np.float64)
    positive = proba[:, 1] if proba.ndim == 2 else proba
    return (positive >= threshold).astype(np.int64)


def tune_binary_threshold(proba_pos: np.ndarray, y: np.ndarray, grid: np.ndarray = DEFAULT_THRESHOLDS) -> float:
    """The grid threshold with the best macro-F1 on (proba_pos, y).

    Ties go to the threshold nearest 0.5, so a flat validation curve (tiny val parts
    are common) does not push the decision to an extreme of the grid.
    """
    proba_pos, y = np.asarray(proba_pos, dtype=np.float64), np.asarray(y)
    if len(y) == 0:
        return 0.5
    scores = np.array([macro_f1(y, apply_threshold(proba_pos, t)) for t in grid])
    best = np.flatnonzero(np.isclose(scores, scores.max()))
    return float(grid[best[np.argmin(np.abs(np.asarray(grid)[best] - 0.5))]])


def fit_temperature(logits: np.ndarray, y: np.ndarray, max_iter: int = 100) -> float:
    """Temperature T minimising the NLL of softmax(logits / T) on (logits, y) (Guo et al., 2017).

    Optimises log T with LBFGS so T stays positive; returns 1.0 when there is nothing to fit.
    A logit of -inf marks a class the head cannot predict (absent from its training part):
    it keeps probability 0 at every T, and rows of such a class say nothing about T, so they are left out.
    """
    import torch

    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    target = torch.as_tensor(np.asarray(y), dtype=torch.long)
    finite = torch.isfinite(z)
    predictable = finite[torch.arange(len(target)), target] if len(target) else torch.zeros(0, dtype=torch.bool)
    z, target, finite = torch.where(finite, z, 0.0)[predictable], target[predictable], finite[predictable]
    if len(target) == 0:
        return 1.0
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(torch.where(finite, z / log_t.exp(), -torch.inf), target)
        loss.backward()
        return loss

    optimiser.step(closure)
    temperature = float(log_t.detach().exp())
    if not np.isfinite(temperature):
        return 1.0
    return float(np.clip(temperature, *TEMPERATURE_BOUNDS))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, numerically stable; -inf logits get probability 0."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class DecisionRule:
    """How a head turns logits into probabilities and labels: softmax at a temperature, then
    argmax or, for binary tasks, a probability threshold. Both are fitted on validation only."""

    temperature: float = 1.0
    threshold: float | None = None

    @classmethod
    def fit(cls, val_logits: np.ndarray, val_y: np.ndarray, *, temperature: bool, threshold: bool) -> DecisionRule:
        """Fit the temperature (when asked) and then, for two classes, the threshold on the tempered
        validation probabilities. With an empty validation part the rule stays softmax + argmax."""
        if len(val_y) == 0:
            return cls()
        fitted_t = fit_temperature(val_logits, val_y) if temperature else 1.0
        tuned = threshold and np.shape(val_logits)[1] == 2
        return cls(fitted_t, tune_binary_threshold(softmax(val_logits, fitted_t)[:, 1], val_y) if tuned else None)

    def predict(self, logits: np.ndarray) -> Prediction:
        proba = softmax(logits, self.temperature)
        labels = apply_threshold(proba, self.threshold) if self.threshold is not None else proba.argmax(axis=1)
        return Prediction(proba=proba, labels=labels)
