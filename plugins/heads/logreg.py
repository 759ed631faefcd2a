"""The logistic-regression probe of thesis Table 4.1 on frozen embeddings."""
from __future__ import annotations

import importlib.metadata
import warnings
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt
from skinbench.sdk import DecisionRule, Head, hookimpl, macro_f1, Part, PluginParams, Prediction
from skinbench.plugins.heads._sklearn_utils import one_thread, over_all_classes

if TYPE_CHECKING:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression


class LogRegProbe(Head):
    """Standardise → whitened PCA → balanced multinomial LR; C and binary threshold chosen on validation."""

    name = "logreg"

    class Params(PluginParams):
        C_grid: Annotated[list[PositiveFloat], Field(
            min_length=1, description="inverse regularisation strengths; the best validation macro-F1 wins, "
                                      "the smaller C on ties")] = [0.5, 1.0, 2.0]
        max_pca: PositiveInt = 256
        whiten: bool = True
        max_iter: PositiveInt = 300
        class_weight: Literal["none", "balanced"] = "balanced"
        tune_threshold: bool = Field(True, description="binary tasks: decision threshold tuned on validation")
        temperature: bool = Field(False, description="temperature scaling fitted on validation (Guo et al., 2017)")

    meta = {"license": "Apache-2.0", "citation": "Mind the Gap: Can Synthetic Augmentation Boost Skin Feature Classification? (MSc thesis, UCL, 2025), Table 4.1"}

    def artefacts(self) -> dict:
        return {"scikit-learn": importlib.metadata.version("scikit-learn")}

    def fit(self, train: Part, val: Part, n_classes: int, seed: int, backbone=None) -> None:
        self.n_classes = n_classes
        with one_thread():
            # scaler and PCA do not depend on C: fitted once, exactly as each C's pipeline would fit them
            self.features = self._features(train.x.shape, seed)
            z_train = self.features.fit_transform(train.x)
            candidates = [self._fit_classifier(z_train, train.y, C, seed) for C in self.config["C_grid"]]
            z_val = self.features.transform(val.x) if len(val) else None
            self.classifier = candidates[0]
            if z_val is not None:
                scores = [macro_f1(val.y, self._logits(m, z_val).argmax(axis=1)) for m in candidates]
                self.classifier = candidates[int(np.argmax(scores))]  # first best: the smaller C on ties
            val_logits = self._logits(self.classifier, z_val) if z_val is not None else np.zeros((0, n_classes))
        self.decision = DecisionRule.fit(val_logits, val.y, temperature=self.config["temperature"],
                                         threshold=self.config["tune_threshold"])

    def _features(self, shape: tuple[int, int], seed: int):
        from sklearn.decomposition import PCA
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        n, d = shape
        n_components = max(1, min(d, n - 1, self.config["max_pca"]))
        return make_pipeline(StandardScaler(),
                             PCA(n_components=n_components, whiten=self.config["whiten"], random_state=seed))

    def _fit_classifier(self, z: np.ndarray, y: np.ndarray, C: float, seed: int) -> LogisticRegression | DummyClassifier:
        from sklearn.dummy import DummyClassifier
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        if len(np.unique(y)) < 2:  # a small learning-curve subsample can leave one class: all this part can teach
            return DummyClassifier(strategy="most_frequent").fit(z, y)
        class_weight = None if self.config["class_weight"] == "none" else self.config["class_weight"]
        model = LogisticRegression(C=C, solver="lbfgs", max_iter=self.config["max_iter"],
                                   class_weight=class_weight, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return model.fit(z, y)

    def _logits(self, model: LogisticRegression, z: np.ndarray) -> np.ndarray:
        """Logits over all K classes (-inf for classes absent from training), whose softmax is
        ``model.predict_proba``; a binary model's one decision value d becomes the pair (0, d)."""
        from sklearn.dummy import DummyClassifier

        if isinstance(model, DummyClassifier):
            return over_all_classes(np.zeros((len(z), 1)), model.classes_, self.n_classes, -np.inf)
        decision = model.decision_function(z)
        if decision.ndim == 1:
            decision = np.stack([np.zeros_like(decision), decision], axis=1)
        return over_all_classes(decision, model.classes_, self.n_classes, -np.inf)

    def predict(self, part: Part) -> Prediction:
        with one_thread():
            logits = self._logits(self.classifier, self.features.transform(part.x))
        return self.decision.predict(logits)


@hookimpl
def skinbench_heads():
    return [LogRegProbe]
