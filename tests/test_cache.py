"""The embedding cache: content-addressed, unpickled, atomic, listable and clearable per backbone."""
from __future__ import annotations

import numpy as np
import pytest

from skinbench.cache import EmbeddingCache


def test_round_trip_without_pickle(tmp_path):
    cache = EmbeddingCache(tmp_path)
    key = EmbeddingCache.backbone_key({"name": "b", "params": {"crop": 224}})
    cache.put(key, "ab" * 32, np.arange(4))
    got = cache.get(key, "ab" * 32)
    assert got.dtype == np.float32 and got.tolist() == [0, 1, 2, 3]
    entry = next(tmp_path.rglob("*.npy"))
    np.load(entry, allow_pickle=False)  # plain array file: loads with pickling refused
    assert cache.get(key, "cd" * 32) is None


def test_every_identity_component_changes_the_key():
    base = {"name": "timm", "params": {"pool": "token", "tta": False},
            "weights": {"sha256": "aa"}, "preprocessing": {"crop": 224, "mean": [0.5]}}
    variants = [
        {**base, "name": "panderm"},
        {**base, "params": {"pool": "avg", "tta": False}},
        {**base, "params": {"pool": "token", "tta": True}},
        {**base, "weights": {"sha256": "bb"}},
        {**base, "preprocessing": {"crop": 196, "mean": [0.5]}},
        {**base, "preprocessing": {"crop": 224, "mean": [0.4]}},
    ]
    keys = {EmbeddingCache.backbone_key(v) for v in variants} | {EmbeddingCache.backbone_key(base)}
    assert len(keys) == len(variants) + 1
    reordered = {k: base[k] for k in reversed(base)}
    assert EmbeddingCache.backbone_key(reordered) == EmbeddingCache.backbone_key(base)


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
        identity = {"name": name}
        key = EmbeddingCache.backbone_key(identity)
        cache.write_identity(key, identity)
        for i in range(n):
            cache.put(key, f"{i:064x}", np.ones(8))
    rows = {r["backbone"]: r for r in cache.info()}
    assert rows["timm"]["entries"] == 3 and rows["panderm"]["entries"] == 2 and rows["timm"]["bytes"] > 0
    assert cache.clear(backbone="timm") == 1
    assert [r["backbone"] for r in cache.info()] == ["panderm"]
    assert cache.clear() == 1 and cache.info() == []
