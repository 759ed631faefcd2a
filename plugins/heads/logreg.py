"""The logistic-regression probe of seed 000 Table 4.1 on frozen embeddings."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinbench.api import Head, Part, Prediction
from skinbench.calibration import apply_threshold, macro_f1, tune_binary_threshold
from skinbench.hookspecs import hookimpl


class LogRegProbe(Head):
    """Standardise → whitened PCA → balanced multinomial LR; C and binary threshold chosen on validation."""

    name = "logreg"
    params = {"C_grid": [0.5, 1.0, 2.0], "max_pca": 256, "whiten": True, "max_iter": 300,
              "class_weight": "balanced", "tune_threshold": True}
    meta = {"license": "Apache-2.0", "citation": "seed 000 (thesis) Table 4.1"}

    def fit(self, train: Part, val: Part, n_classes: int, seed: int, backbone=None) -> None:
        self.n_classes = n_classes
        candidates = [self._fit_one(train, C, seed) for C in self.config["C_grid"]]
        if len(val):
            val_scores = [macro_f1(val.y, self._proba(m, val.x).argmax(1)) for m in candidates]
            self.model = candidates[int(np.argmax(val_scores))]  # first best: the smaller C on ties
        else:
            self.model = candidates[0]
        self.threshold = None
        if n_classes == 2 and self.config["tune_threshold"] and len(val):
            self.threshold = tune_binary_threshold(self._proba(self.model, val.x)[:, 1], val.y)

    def _fit_one(self, train: Part, C: float, seed: int):
        n, d = train.x.shape
        n_components = max(1, min(d, n - 1, self.config["max_pca"]))
        model = make_pipeline(
            StandardScaler(),
            PCA(n_components=n_components, whiten=self.config["whiten"], random_state=seed),
            LogisticRegression(C=C, solver="lbfgs", max_iter=self.config["max_iter"],
                               class_weight=self.config["class_weight"], random_state=seed),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(train.x, train.y)
        return model

    def _proba(self, model, x: np.ndarray) -> np.ndarray:
        """Probabilities over all K classes, zero for classes absent from training."""
        proba = np.zeros((len(x), self.n_classes))
        proba[:, model.classes_] = model.predict_proba(x)
        return proba

    def predict(self, part: Part) -> Prediction:
        proba = self._proba(self.model, part.x)
        labels = apply_threshold(proba, self.threshold) if self.threshold is not None else proba.argmax(1)
        return Prediction(proba=proba, labels=labels)


@hookimpl
def skinbench_heads():
    return [LogRegProbe]
