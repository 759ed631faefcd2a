"""The k-nearest-neighbour probe on frozen embeddings: the standard frozen-feature probe next to
the linear one (Wu et al., 2018; DINO's k-NN evaluation, Caron et al., 2021)."""
from __future__ import annotations

import importlib.metadata
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, PositiveInt
from skinbench.sdk import Head, hookimpl, macro_f1, Part, PluginParams, Prediction
from skinbench.plugins.heads._sklearn_utils import one_thread, over_all_classes


class KNNProbe(Head):
    """Cosine kNN on the embeddings; k chosen on validation macro-F1, votes over all K classes."""

    name = "knn"

    class Params(PluginParams):
        k_grid: Annotated[list[PositiveInt], Field(
            min_length=1, description="neighbour counts tried (capped at the training size); the best "
                                      "validation macro-F1 wins, the smaller k on ties")] = [5, 10, 20, 50, 100]
        weights: Literal["uniform", "distance"] = Field(
            "distance", description="a neighbour's vote: equal, or 1 / cosine distance")

    meta = {
        "license": "Apache-2.0",
        "citation": "Wu et al., Unsupervised Feature Learning via Non-Parametric Instance Discrimination, CVPR 2018 "
                    "(k-NN evaluation of frozen features); Caron et al., Emerging Properties in Self-Supervised "
                    "Vision Transformers (DINO), ICCV 2021",
        "notes": "cosine distance = Euclidean distance of L2-normalised embeddings, up to a monotone map",
    }

    def artefacts(self) -> dict:
        return {"scikit-learn": importlib.metadata.version("scikit-learn")}

    def fit(self, train: Part, val: Part, n_classes: int, seed: int, backbone=None) -> None:
        """Stores the training embeddings and picks k on validation; ``seed`` is unused: kNN draws nothing."""
        from sklearn.neighbors import KNeighborsClassifier

        self.n_classes = n_classes
        candidates = sorted({min(k, len(train)) for k in self.config["k_grid"]})
        self.model = KNeighborsClassifier(n_neighbors=candidates[0], weights=self.config["weights"],
                                          metric="cosine", algorithm="brute").fit(train.x, train.y)
        if len(val) and len(candidates) > 1:
            scores = []
            for k in candidates:
                self.model.set_params(n_neighbors=k)
                scores.append(macro_f1(val.y, self.predict(val).labels))
            self.model.set_params(n_neighbors=candidates[int(np.argmax(scores))])

    @property
    def k(self) -> int:
        """The neighbour count in use (chosen on validation)."""
        return self.model.n_neighbors

    def predict(self, part: Part) -> Prediction:
        with one_thread():
            proba = over_all_classes(self.model.predict_proba(part.x), self.model.classes_, self.n_classes, 0.0)
        return Prediction(proba=proba, labels=proba.argmax(axis=1))


@hookimpl
def skinbench_heads():
    return [KNNProbe]
