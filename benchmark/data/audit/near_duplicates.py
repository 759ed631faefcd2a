"""Near-duplicate images across patients: perceptual hashes and a vectorised Hamming search.

Identical bytes are joined by :mod:`skinbench.data.groups`; a photo re-saved with one pixel changed,
re-encoded as JPEG, resized or slightly cropped is not identical, and the split would then put a copy of a
test image into training. Each image gets imagehash's 64-bit pHash (DCT of a 32 × 32 greyscale copy), cached
by the file's sha256, and every pair within ``threshold`` bits is found by XOR and popcount over blocks of
the packed hashes: n²/2 64-bit operations in numpy (10,000 images: about 5·10⁷, well under a second; see
``benchmarks/audit_scaling.py``), never a Python loop over pairs.
"""
from __future__ import annotations

import json
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from skinbench.api import DataError
from skinbench.atomic import atomic_write_json
from skinbench.data.groups import linked_groups
from skinbench.data.protocol import Protocol, TestPart
from skinbench.hashing import file_digest

HASH_SIZE = 8
"""imagehash's default: an 8 × 8 block of DCT coefficients, 64 bits."""
BLOCK = 512
"""Rows of the Hamming matrix computed at once: 512 × n uint64 (40 MB at n = 10,000)."""
PAIR_COLUMNS = ["image_a", "image_b", "patient_a", "patient_b", "distance"]


def perceptual_hashes(paths: list[str], cache_root: str | Path) -> np.ndarray:
    """The 64-bit pHash of every image as uint64, computed once per file content (cached under ``phash/``).

    An unreadable image is a :class:`DataError` naming every such file."""
    cache_file = Path(cache_root) / "phash" / f"imagehash-{imagehash.__version__}-{HASH_SIZE}.json"
    cached = _read_cache(cache_file)
    digests = [file_digest(p) for p in paths]
    missing = {d: p for d, p in zip(digests, paths) if d not in cached}
    problems = []
    for digest, path in missing.items():
        try:
            with Image.open(path) as image:
                cached[digest] = str(imagehash.phash(image, hash_size=HASH_SIZE))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            problems.append(f"{path}: cannot be read for the near-duplicate audit ({exc.__class__.__name__}: {exc}); "
                            "replace the file or remove its row")
    if problems:
        raise DataError(problems)
    if missing:
        try:
            atomic_write_json(cache_file, cached, indent=None)
        except OSError:
            pass  # a read-only cache costs the next run the hashing, not this one its answer
    return np.array([int(cached[d], 16) for d in digests], dtype=np.uint64)


def _read_cache(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # absent or torn: recomputed
    return data if isinstance(data, dict) else {}


def close_pairs(hashes: np.ndarray, threshold: int, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (i < j) whose hashes differ in at most ``threshold`` bits, with the distance."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    found_i, found_j, found_d = [], [], []
    for start in range(0, len(hashes), block):
        rows = hashes[start:start + block]
        distance = _popcount(rows[:, None] ^ hashes[None, start:])  # only the upper triangle: columns from start
        i, j = np.nonzero(distance <= threshold)
        keep = j > i
        found_i.append(i[keep] + start)
        found_j.append(j[keep] + start)
        found_d.append(distance[i[keep], j[keep]])
    if not found_i:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d).astype(int)


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(values)
    as_bytes = values.view(np.uint8).reshape(*values.shape, 8)
    return _BYTE_BITS[as_bytes].sum(axis=-1, dtype=np.uint8)


_BYTE_BITS = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint8)


def cross_patient_pairs(images: pd.Series, groups: pd.Series, threshold: int, cache_root: str | Path) -> pd.DataFrame:
    """Every pair of distinct image files under different patients within ``threshold`` bits (columns
    :data:`PAIR_COLUMNS`), closest first. ``images`` and ``groups`` are aligned rows of one dataset."""
    frame = pd.DataFrame({"image": images.astype(str).to_numpy(), "group": groups.astype(str).to_numpy()})
    frame = frame.drop_duplicates("image").reset_index(drop=True)
    hashes = perceptual_hashes(list(frame["image"]), cache_root)
    i, j, distance = close_pairs(hashes, threshold)
    pairs = pd.DataFrame({"image_a": frame["image"].to_numpy()[i], "image_b": frame["image"].to_numpy()[j],
                          "patient_a": frame["group"].to_numpy()[i], "patient_b": frame["group"].to_numpy()[j],
                          "distance": distance}, columns=PAIR_COLUMNS)
    pairs = pairs[pairs["patient_a"] != pairs["patient_b"]]
    return pairs.sort_values(["distance", "image_a", "image_b"], kind="stable").reset_index(drop=True)


def near_duplicate_groups(images: pd.Series, groups: pd.Series, pairs: pd.DataFrame) -> dict[str, str]:
    """Map every group id to its joined group, near-duplicate pairs joining like shared image bytes do.

    The pairs' connected components over images are the link values of :func:`skinbench.data.groups.linked_groups`,
    the join identical images go through, so a joined patient is named by its smallest member id either way."""
    frame = pd.DataFrame({"image": images.astype(str).to_numpy(), "group": groups.astype(str).to_numpy()})
    names = pd.Index(pd.unique(frame["image"]))
    a, b = names.get_indexer(pairs["image_a"]), names.get_indexer(pairs["image_b"])
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(names), len(names)))
    _, component = connected_components(graph, directed=False)
    linked = pd.Series(np.bincount(component)[component] > 1, index=names)
    links = pd.Series([f"near:{component[names.get_loc(image)]}" if linked[image] else "" for image in frame["image"]])
    joined = linked_groups(frame["group"], links)
    return dict(zip(frame["group"], joined))


def with_split_sides(pairs: pd.DataFrame, splits: dict[TestPart, list[str]], protocol: Protocol) -> pd.DataFrame:
    """Each pair with the side of every test part its two images fall on and how many parts it straddles.

    ``sides`` reads e.g. ``{"split 0": "test/train"}``; a pair that straddles a part put a copy of a test image
    into that part's training patients. Joined pairs (column ``joined_as``) are looked up as the one patient
    they became."""
    if pairs.empty:
        return pairs.assign(sides=pd.Series(dtype=object), straddles=pd.Series(dtype=int))
    tests = {part: set(test) for part, test in splits.items()}
    sides, straddles = [], []
    joined = pairs["joined_as"] if "joined_as" in pairs else None  # the splits name joined patients
    for a, b in zip(joined if joined is not None else pairs["patient_a"], joined if joined is not None else pairs["patient_b"]):
        where = {protocol.part_name(part): f"{_side(a, test)}/{_side(b, test)}" for part, test in tests.items()}
        sides.append(where)
        straddles.append(sum((a in test) != (b in test) for test in tests.values()))
    return pairs.assign(sides=sides, straddles=straddles)


def _side(group: str, test: set[str]) -> str:
    return "test" if group in test else "train"


def pair_warning(pairs: pd.DataFrame, where: str, protocol: Protocol) -> list[str]:
    """One warning for a dataset's near-duplicate pairs: how many, how many straddle a split, the first pair."""
    if pairs.empty:
        return []
    straddling = int((pairs["straddles"] > 0).sum()) if "straddles" in pairs else 0
    first = pairs.iloc[0]
    example = f"e.g. {first['image_a']} ({first['patient_a']}) ~ {first['image_b']} ({first['patient_b']})"
    if protocol.join_near_duplicates:
        return [f"{where}: {len(pairs)} near-duplicate image pair(s) under different patients (pHash distance ≤ "
                f"{protocol.near_duplicate_threshold}) were joined into one patient each, {example}; audit.json "
                "lists every pair"]
    return [f"{where}: {len(pairs)} near-duplicate image pair(s) under different patients (pHash distance ≤ "
            f"{protocol.near_duplicate_threshold}), {straddling} on both sides of a test split, {example}; a copy of "
            "a test image in training inflates every score: set protocol.join_near_duplicates: true to keep each "
            "pair on one side (audit.json lists every pair)"]
