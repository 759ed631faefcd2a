"""Precomputed embeddings: lookup by path in its relative forms, every missing image reported."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skinbench.api import DataError
from skinbench.execution.cache import EmbeddingCache
from skinbench.execution.embedding import embed_paths
from skinbench.plugins.backbones.precomputed import Precomputed


@pytest.fixture
def dataset(tmp_path):
    """Three images under <tmp>/scin/dataset/images, stored in an npz as Google keys them."""
    folder = tmp_path / "scin" / "dataset" / "images"
    folder.mkdir(parents=True)
    paths = []
    for name in ("-101.png", "202.png", "303.png"):
        (folder / name).write_bytes(name.encode())  # the pipeline hashes bytes; it never decodes here
        paths.append(str(folder / name))
    vectors = {f"dataset/images/{p.split('/')[-1]}": np.full(6, i, np.float32) for i, p in enumerate(paths)}
    np.savez(tmp_path / "embeddings.npz", **vectors)
    return tmp_path, paths


def test_npz_keys_match_absolute_paths_by_their_tail(dataset):
    root, paths = dataset
    backbone = Precomputed(file=str(root / "embeddings.npz"), model="derm-foundation")
    got = backbone.embed_paths(paths[::-1])
    np.testing.assert_array_equal(got[:, 0], [2, 1, 0])


def test_every_missing_key_is_reported_naming_the_file(dataset):
    root, paths = dataset
    extra = [str(root / "scin" / "dataset" / "images" / n) for n in ("404.png", "505.png")]
    backbone = Precomputed(file=str(root / "embeddings.npz"))
    with pytest.raises(DataError) as err:
        backbone.embed_paths(paths + extra)
    assert len(err.value.problems) == 2
    assert all("embeddings.npz" in p for p in err.value.problems)
    assert "404.png" in err.value.problems[0] and "505.png" in err.value.problems[1]


def test_csv_table_with_root_relative_paths_and_the_cache(dataset, tmp_path):
    root, paths = dataset
    table = pd.DataFrame({"path": ["scin/dataset/images/-101.png", "scin/dataset/images/202.png",
                                   "scin/dataset/images/303.png"], "e0": [1.0, 2.0, 3.0], "e1": [4.0, 5.0, 6.0]})
    table.to_csv(root / "table.csv", index=False)
    backbone = Precomputed(file=str(root / "table.csv"), path_column="path", root=str(root))
    cache = EmbeddingCache(tmp_path / "cache")
    got = embed_paths(backbone, paths, cache=cache, progress=False)
    np.testing.assert_array_equal(got, [[1, 4], [2, 5], [3, 6]])
    assert cache.info()[0]["entries"] == 3 and cache.info()[0]["backbone"] == "precomputed"
