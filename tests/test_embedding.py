"""The embedding pipeline: a warm cache means zero forward passes, in embed_paths and in a whole suite."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backbone_fixtures import SMALL, tiny_timm_weights, write_images
from skinbench.api import Backbone, PluginError
from skinbench.execution.cache import EmbeddingCache
from skinbench.execution.embedding import embed_paths


class CountingBackbone(Backbone):
    """Mean colour per image; counts how many images it was asked to embed."""

    name = "counting"
    params = {"scale": 1.0}

    def __init__(self, **overrides):
        super().__init__(**overrides)
        self.calls = 0

    def embed(self, images):
        self.calls += len(images)
        return np.stack([np.asarray(im, np.float32).mean((0, 1)) * self.config["scale"] for im in images])


class PathBackbone(CountingBackbone):
    """Uses the path hook: the pipeline must hand it paths, not decoded images."""

    name = "by-path"

    def embed_paths(self, paths):
        self.calls += len(paths)
        return np.array([[float(len(p))] for p in paths], np.float32)


def test_second_run_embeds_nothing(tmp_path):
    paths = write_images(tmp_path / "img", 4)
    cache = EmbeddingCache(tmp_path / "cache")
    first = CountingBackbone()
    cold = embed_paths(first, paths + paths[:1], cache=cache, progress=False)
    assert first.calls == 4  # the repeated image is embedded once
    second = CountingBackbone()
    warm = embed_paths(second, paths, cache=cache, progress=False)
    assert second.calls == 0
    np.testing.assert_array_equal(warm, cold[:4])
    changed = CountingBackbone(scale=2.0)  # another identity: another key, computed afresh
    embed_paths(changed, paths, cache=cache, progress=False)
    assert changed.calls == 4


def test_same_bytes_under_another_name_hit_the_cache(tmp_path):
    paths = write_images(tmp_path / "img", 2)
    copy = tmp_path / "copy.png"
    copy.write_bytes(Path(paths[0]).read_bytes())
    cache = EmbeddingCache(tmp_path / "cache")
    embed_paths(CountingBackbone(), paths, cache=cache, progress=False)
    again = CountingBackbone()
    embed_paths(again, [str(copy)], cache=cache, progress=False)
    assert again.calls == 0


def test_the_path_hook_is_preferred(tmp_path):
    paths = write_images(tmp_path / "img", 3)
    backbone = PathBackbone()
    out = embed_paths(backbone, paths, progress=False)
    assert backbone.calls == 3 and out[:, 0].tolist() == [float(len(p)) for p in paths]


def test_a_wrong_number_of_rows_is_the_backbones_fault(tmp_path):
    class Short(CountingBackbone):
        def embed(self, images):
            return np.zeros((1, 3))

    with pytest.raises(PluginError, match="shape \\(1, 3\\) for 2 images"):
        embed_paths(Short(), write_images(tmp_path, 2), progress=False)


def test_a_rerun_suite_makes_no_forward_pass(tmp_path):
    pytest.importorskip("skinbench.execution.runner")
    from skinbench.execution.runner import run_suite

    weights, _ = tiny_timm_weights(tmp_path / "w")
    suite = {
        "name": "tiny", "datasets": [{"name": "demo", "params": {"n_patients": 12, "image_size": 32,
                                                                  "root": str(tmp_path / "data")}}],
        "backbones": [{"name": "timm", "params": {"model": "test_vit", "weights": str(weights), **SMALL}}],
        "augmenters": [{"name": "none"}], "heads": [{"name": "logreg"}],
        "protocol": {"test_fraction": 0.25, "tau": 3, "seeds": [0], "val_folds": 2},
    }
    forwards = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: forwards.append(1) if type(module).__name__ == "PooledFeatures" else None)
    try:
        first = run_suite(suite, tmp_path / "run1", cache_dir=tmp_path / "cache")
        cold = len(forwards)
        second = run_suite(suite, tmp_path / "run2", cache_dir=tmp_path / "cache")
    finally:
        hook.remove()
    assert cold > 0 and (first["status"] == "ok").any()
    assert len(forwards) == cold  # the second run, in a fresh folder, was served from the cache
    assert (second["status"] == "ok").sum() == (first["status"] == "ok").sum()


def test_cpu_embedding_tasks_use_the_machines_thread_count_in_any_process(tmp_path):
    """A Dask worker process starts with one torch thread; a CPU convolution's sums depend on the
    thread count, so an embedding task runs at the machine's count (the in-process default) and the
    Dask run's cached embeddings equal the local run's. The caller's setting is restored."""
    import os

    from skinbench.plugins.backbones.handcrafted import HandcraftedBackbone
    from skinbench.execution.jobs import embed_task

    seen = []

    class ThreadRecorder(HandcraftedBackbone):
        name = "thread-recorder"

        def embed(self, images):
            seen.append(torch.get_num_threads())
            return super().embed(images)

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # what a Dask worker process gets
    try:
        embed_task(ThreadRecorder(size=16), write_images(tmp_path, 2))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {len(os.sched_getaffinity(0))}


def test_one_planner_chunks_cache_misses_by_content_for_the_runner_and_embed_paths(tmp_path):
    """cache_misses: each image content once, cached vectors loaded instead of planned, chunks of PATH_CHUNK;
    embed_paths and the runner's embedding tasks both plan with it."""
    import inspect

    from skinbench.execution import runner
    from skinbench.execution.embedding import PATH_CHUNK, cache_misses

    digest = {f"img{i}.png": f"d{i % 300}" for i in range(400)}  # 100 files repeat earlier contents
    cache = EmbeddingCache(tmp_path / "cache")
    cache.put("key", "d0", np.ones(3, np.float32))
    known = {"d1": np.zeros(3, np.float32)}
    chunks = cache_misses(list(digest), digest.__getitem__, known, cache, "key")
    planned = [content for chunk in chunks for _, content in chunk]
    assert len(planned) == len(set(planned)) == 298 and {"d0", "d1"}.isdisjoint(planned)
    assert [len(c) for c in chunks] == [PATH_CHUNK, 298 - PATH_CHUNK] and "d0" in known
    assert "cache_misses(" in inspect.getsource(runner.Grid.submit_embeddings)
