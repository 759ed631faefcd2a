"""Throwaway plugins registered by tests through the same hooks as built-ins."""
from __future__ import annotations

import numpy as np

from skinbench.api import Backbone, Head
from skinbench.hookspecs import hookimpl
from skinbench.plugins.backbones.handcrafted import HandcraftedBackbone
from skinbench.plugins.heads.logreg import LogRegProbe


class CountingBackbone(HandcraftedBackbone):
    """Handcrafted features that count how many images reached ``embed``."""

    name = "counting"
    calls = 0

    def embed(self, images):
        CountingBackbone.calls += len(images)
        return super().embed(images)


class BrokenHead(Head):
    """Fails on purpose for one task, to show a failure stays inside its cells."""

    name = "broken"
    params = {"fail_task_classes": 3}

    def fit(self, train, val, n_classes, seed, backbone=None):
        if n_classes == self.config["fail_task_classes"]:
            raise RuntimeError("deliberate failure")
        self.k = n_classes

    def predict(self, part):
        from skinbench.api import Prediction

        proba = np.full((len(part), self.k), 1 / self.k)
        return Prediction(proba, np.zeros(len(part), dtype=int))


class PermutedLabelsProbe(LogRegProbe):
    """The logreg probe trained on permuted training and validation labels (leakage control)."""

    name = "logreg-permuted"

    def fit(self, train, val, n_classes, seed, backbone=None):
        rng = np.random.default_rng(seed + 12345)
        train.y, val.y = rng.permutation(train.y), rng.permutation(val.y)
        super().fit(train, val, n_classes, seed, backbone)


class TestPlugins:
    @hookimpl
    def skinbench_backbones(self):
        return [CountingBackbone]

    @hookimpl
    def skinbench_heads(self):
        return [BrokenHead, PermutedLabelsProbe]


class ExplodingHead(Head):
    """Raises in its constructor, as a buggy third-party head might."""

    name = "exploding"

    def __init__(self, **overrides):
        super().__init__(**overrides)
        raise RuntimeError("cannot start")


class AlwaysFailingHead(Head):
    """Fails in every cell: the run must still show the dummies and a failures summary."""

    name = "always-failing"

    def fit(self, train, val, n_classes, seed, backbone=None):
        raise ValueError("no signal here")


class BadInputPlugins:
    @hookimpl
    def skinbench_heads(self):
        return [ExplodingHead, AlwaysFailingHead]
