"""The Dask executor reproduces the in-process run exactly, survives a lost worker, fails only a failing
plugin's cells, and sends CUDA embedding tasks only to workers that advertise a GPU."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plugins_for_tests import DaskPlugins
from skinbench.execution.cache import EmbeddingCache
from skinbench.record.identity import embedding_key
from skinbench.execution.runner import run_suite
from skinbench.record.store import METRICS
from skinbench.configuration.suite import Executor
from skinbench.data.preflight import preflight

pytestmark = pytest.mark.slow


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    return df[["cell_id", "seed", "split", "status", *METRICS]].sort_values(["cell_id", "seed", "split"]) \
        .reset_index(drop=True)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, each advertising one (fake) GPU."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, resources={"GPU": 1},
                      dashboard_address=None) as local:
        yield local


def test_a_local_cluster_of_two_workers_reproduces_the_local_run(tmp_path, suite_factory):
    suite = suite_factory(augmenters=["none", "classical"], protocol={"seeds": [0, 1], "dummy_draws": 100})
    local = run_suite(suite, tmp_path / "local", cache_dir=tmp_path / "cache-local")
    dask = run_suite(suite, tmp_path / "dask", cache_dir=tmp_path / "cache-dask", executor=Executor(kind="dask", workers=2))
    assert (dask["status"] == "ok").all()
    pd.testing.assert_frame_equal(comparable(dask), comparable(local))
    for cell, seed in zip(local["cell_id"], local["seed"]):  # and so are the stored predictions
        name = f"{cell}_s{seed}.parquet"
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dask" / "predictions" / name),
                                      pd.read_parquet(tmp_path / "local" / "predictions" / name))
    synthetic = list((tmp_path / "cache-dask" / "augmented").rglob("*.png"))
    assert synthetic, "the driver stores the images its workers generated"


def test_a_cv_suite_gives_identical_rows_on_dask(tmp_path, suite_factory, cluster):
    suite = suite_factory(augmenters=["none", "classical"],
                          protocol={"seeds": [0], "dummy_draws": 100, "scheme": "cv", "folds": 4})
    local = run_suite(suite, tmp_path / "local", cache_dir=tmp_path / "cache-local")
    dask = run_suite(suite, tmp_path / "dask", cache_dir=tmp_path / "cache-dask",
                     executor=Executor(kind="dask", scheduler=cluster.scheduler_address))
    columns = ["cell_id", "seed", "split", "fold", "status", *METRICS]
    assert (dask["status"] == "ok").all() and sorted(dask["fold"].unique()) == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(dask[columns].sort_values(columns[:4]).reset_index(drop=True),
                                  local[columns].sort_values(columns[:4]).reset_index(drop=True))


def test_a_worker_killed_mid_run_is_retried_with_identical_results(tmp_path, suite_factory, cluster):
    marker = tmp_path / "killed"
    head = {"name": "logreg-killer", "params": {"marker": str(marker)}}
    suite = suite_factory(heads=[head], protocol={"seeds": [0], "dummy_draws": 100})
    on_dask = run_suite(suite, tmp_path / "dask", executor=Executor(kind="dask", scheduler=cluster.scheduler_address),
                        extra_plugins=[DaskPlugins()])
    assert marker.exists(), "no worker was killed"
    assert (on_dask["status"] == "ok").all()
    local = run_suite(suite, tmp_path / "local", extra_plugins=[DaskPlugins()])
    pd.testing.assert_frame_equal(comparable(on_dask), comparable(local))


def test_a_failing_plugin_fails_only_its_cells_on_dask(tmp_path, suite_factory, cluster):
    suite = suite_factory(heads=["logreg", "broken"], protocol={"seeds": [0], "dummy_draws": 100})
    results = run_suite(suite, tmp_path / "run", executor=Executor(kind="dask", scheduler=cluster.scheduler_address),
                        extra_plugins=[DaskPlugins()])
    broken = results[results["head"] == "broken"]
    three = broken["n_classes"] == 3
    assert (broken.loc[three, "status"] == "failed").all()
    assert broken.loc[three, "error"].str.contains("head 'broken' failed: RuntimeError: deliberate failure").all()
    assert (broken.loc[~three, "status"] == "ok").all()
    assert (results[results["head"] != "broken"]["status"] == "ok").all()


def test_cuda_embedding_tasks_ask_for_a_gpu_resource(tmp_path, suite_factory, cluster):
    suite = suite_factory(backbones=["fake-gpu", {"name": "handcrafted", "params": {"size": 32}}],
                          protocol={"seeds": [0], "dummy_draws": 50})
    cache = tmp_path / "cache"
    results = run_suite(suite, tmp_path / "run", cache_dir=cache,
                        executor=Executor(kind="dask", scheduler=cluster.scheduler_address), extra_plugins=[DaskPlugins()])
    assert (results["status"] == "ok").all()
    backbone = preflight(suite, extra_plugins=[DaskPlugins()]).plugins["backbones"][0]
    folder = EmbeddingCache(cache).dir / embedding_key(backbone)
    flags = {float(np.load(f)[-1]) for f in folder.glob("*/*.npy")}
    assert flags == {1.0}  # every embedding task of the CUDA backbone carried the GPU restriction
