"""File digests persist in the cache keyed by (path, size, mtime, inode): a second process reads no image bytes,
and a rewritten or replaced file is hashed again."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from skinbench import hashing


@pytest.fixture
def images(tmp_path):
    paths = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)).save(path)
        paths.append(str(path))
    hashing.use_digest_store(tmp_path / "cache")
    yield paths
    hashing.use_digest_store(None)
    hashing._MEMO.clear()


def test_a_new_process_reads_digests_from_the_store_not_the_bytes(images, monkeypatch):
    first = hashing.file_digests(images)
    hashing._MEMO.clear()  # what a new process starts with
    read = []
    monkeypatch.setattr(hashing, "_sha256", lambda path: read.append(path) or "recomputed")
    assert hashing.file_digests(images) == first and read == []


def test_a_rewritten_or_replaced_file_is_hashed_again(images, tmp_path):
    first = hashing.file_digests(images)
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(images[0])  # rewritten in place: size and mtime
    replacement = tmp_path / "other.png"
    Image.fromarray(np.full((8, 8, 3), 99, np.uint8)).save(replacement)
    stat = os.stat(images[1])
    os.replace(replacement, images[1])  # another file under the old name, with the old mtime: a new inode
    os.utime(images[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    hashing._MEMO.clear()
    again = hashing.file_digests(images)
    assert again[0] != first[0] and again[1] != first[1] and again[2:] == first[2:]
    assert again[1] == hashing._sha256(images[1])


def test_an_unwritable_store_only_costs_time(images, tmp_path):
    hashing.use_digest_store(tmp_path / "cache" / "digests.sqlite" / "not-a-folder")  # cannot be created
    hashing._MEMO.clear()
    assert hashing.file_digests(images) == [hashing._sha256(p) for p in images]
