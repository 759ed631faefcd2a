"""The embedding cache: content-addressed, unpickled, atomic, listable and clearable per backbone."""
from __future__ import annotations

import numpy as np
import pytest

from skinbench.execution.cache import EmbeddingCache


def test_round_trip_without_pickle(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put("backbone-a", "ab" * 32, np.arange(4))
    got = cache.get("backbone-a", "ab" * 32)
    assert got.dtype == np.float32 and got.tolist() == [0, 1, 2, 3]
    entry = next(tmp_path.rglob("*.npy"))
    np.load(entry, allow_pickle=False)  # plain array file: loads with pickling refused
    assert cache.get("backbone-a", "cd" * 32) is None
    assert cache.get("backbone-b", "ab" * 32) is None  # another backbone identity never sees it


def test_a_failed_write_leaves_no_entry_and_no_temporary(tmp_path):
    cache = EmbeddingCache(tmp_path)

    class Unsaveable:
        def __array__(self, dtype=None, copy=None):
            raise KeyboardInterrupt  # a run killed in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        cache.put("k", "ef" * 32, Unsaveable())
    assert cache.get("k", "ef" * 32) is None
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_info_and_clear_by_backbone_name(tmp_path):
    cache = EmbeddingCache(tmp_path)
    for name, n in (("timm", 3), ("panderm", 2)):
        key = f"{name}-key"
        cache.write_identity(key, {"name": name})
        for i in range(n):
            cache.put(key, f"{i:064x}", np.ones(8))
    rows = {r["backbone"]: r for r in cache.info()}
    assert rows["timm"]["entries"] == 3 and rows["panderm"]["entries"] == 2 and rows["timm"]["bytes"] > 0
    assert cache.clear(backbone="timm") == 1
    assert [r["backbone"] for r in cache.info()] == ["panderm"]
    assert cache.clear() == 1 and cache.info() == []
