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


class TestPlugins:
    @hookimpl
    def skinbench_backbones(self):
        return [CountingBackbone]

    @hookimpl
    def skinbench_heads(self):
        return [BrokenHead]


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


class FakeGpuBackbone(Backbone):
    """Says it runs on CUDA (so its embedding tasks ask Dask for a GPU) and records, as its last
    feature, whether the task that ran it carried that resource restriction."""

    name = "fake-gpu"

    def artefacts(self):
        return {"device_type": "cuda"}

    def embed(self, images):
        from distributed import get_worker

        worker = get_worker()
        restrictions = worker.state.tasks[worker.get_current_task()].resource_restrictions or {}
        flag = float(restrictions.get("GPU", 0))
        return np.stack([np.append(np.asarray(i, dtype=np.float32).mean((0, 1)), flag) for i in images])


class WorkerKillingHead(LogRegProbe):
    """The logreg probe, but the first fit kills its worker process (a lost machine)."""

    name = "logreg-killer"
    params = {**LogRegProbe.params, "marker": ""}

    def fit(self, train, val, n_classes, seed, backbone=None):
        import os
        from pathlib import Path

        marker = Path(self.config["marker"])
        if not marker.exists():
            marker.write_text("killed once")
            os._exit(1)
        super().fit(train, val, n_classes, seed, backbone)


class DaskPlugins:
    @hookimpl
    def skinbench_backbones(self):
        return [FakeGpuBackbone]

    @hookimpl
    def skinbench_heads(self):
        return [WorkerKillingHead, BrokenHead]
