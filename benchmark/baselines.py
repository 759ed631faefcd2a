"""Chance baselines: most-frequent, uniform and stratified dummies.

The random dummies are scored as *expectations* over many seeded draws, so a
lucky draw can never make a model look better or worse than chance.
"""
from __future__ import annotations

import numpy as np

from skinbench.metrics import PROBABILITY_METRICS, confusion_batch, label_metrics_batch, score
from skinbench.vocabulary import DUMMIES



def dummy_scores(kind: str, y_train: np.ndarray, y_test: np.ndarray, n_classes: int, ordinal: bool,
                 draws: int = 1000, seed: int = 0) -> tuple[dict[str, float], np.ndarray]:
    """Metrics of one dummy on the test part, and its (constant) class probabilities.

    Priors come from the real training labels; ``uniform`` and ``stratified`` sample
    among the classes seen in training, as scikit-learn's DummyClassifier does.
    """
    counts = np.bincount(y_train, minlength=n_classes).astype(float)
    seen = counts > 0
    if kind == "most_frequent":
        proba = np.eye(n_classes)[int(np.argmax(counts))]
    elif kind == "uniform":
        proba = seen / seen.sum()
    elif kind == "stratified":
        proba = counts / counts.sum()
    else:
        raise ValueError(f"unknown dummy '{kind}'; known: {', '.join(DUMMIES)}")
    probas = np.tile(proba, (len(y_test), 1))
    if kind == "most_frequent":
        return score(y_test, probas.argmax(1), probas, n_classes, ordinal), probas
    rng = np.random.default_rng(seed)
    preds = rng.choice(n_classes, size=(draws, len(y_test)), p=proba)
    expected = {k: float(np.nanmean(v)) if not np.isnan(v).all() else np.nan
                for k, v in label_metrics_batch(confusion_batch(y_test, preds, n_classes), ordinal).items()}
    ranking = score(y_test, preds[0], probas, n_classes, ordinal)  # constant scores: AUROC 0.5, PR-AUC = prevalence
    for k in PROBABILITY_METRICS:
        expected[k] = ranking[k]
    return expected, probas
