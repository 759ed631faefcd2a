"""Near-duplicate audit on a SCIN-sized set of generated images: hashing, cached rehashing and the pair search.

Writes N distinct 96 px images (smooth random colour fields, with 1% of them copied with one pixel changed),
then times separately: pHash of every file (cold cache), the same call again (every hash read from the cache
by file digest), and the vectorised Hamming search over all pairs. Also times the search alone on 100,000
random hashes, to show how it grows (n² / 2 XOR + popcount in numpy blocks).

    .venv/bin/python benchmarks/audit_scaling.py            # 10,000 images
    .venv/bin/python benchmarks/audit_scaling.py --n 2000   # a quicker look

The last line is ``search_seconds=<time of the pair search over the N images>``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage


def write_images(folder: Path, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        field = ndimage.gaussian_filter(rng.standard_normal((96, 96, 3)), (6, 6, 0))
        field = (field - field.min()) / (np.ptp(field) + 1e-9)
        path = folder / f"img{i:05d}.png"
        Image.fromarray((field * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    for i in range(0, n, 100):  # 1% near-duplicates under other names
        pixels = np.array(Image.open(paths[i]))
        pixels[0, 0] = 255 - pixels[0, 0]
        path = folder / f"copy{i:05d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="generated images (default 10,000)")
    parser.add_argument("--threshold", type=int, default=10, help="Hamming threshold (default 10)")
    args = parser.parse_args()
    from skinbench.data.audit.near_duplicates import close_pairs, perceptual_hashes

    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "images", Path(tmp) / "cache"
        folder.mkdir()
        paths = write_images(folder, args.n)
        start = time.perf_counter()
        hashes = perceptual_hashes(paths, cache)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        again = perceptual_hashes(paths, cache)
        warm = time.perf_counter() - start
        assert np.array_equal(hashes, again)
        start = time.perf_counter()
        i, j, _ = close_pairs(hashes, args.threshold)
        search = time.perf_counter() - start
    copies = sum(1 for a, b in zip(i, j) if Path(paths[b]).name.startswith("copy")
                 and Path(paths[b]).name[4:] == Path(paths[a]).name[3:])
    print(f"{len(paths)} images: pHash cold {cold:.1f} s ({len(paths) / cold:.0f} images/s), cached rerun "
          f"{warm:.2f} s (file digests + cache read), pair search {search:.2f} s; {len(i)} pairs within "
          f"{args.threshold} bits, {copies} of the {len(range(0, args.n, 100))} planted copies")
    random = np.random.default_rng(1).integers(0, 2 ** 63, 100_000, dtype=np.int64).astype(np.uint64)
    start = time.perf_counter()
    close_pairs(random, args.threshold)
    print(f"pair search alone on 100,000 random hashes: {time.perf_counter() - start:.1f} s")
    print(f"search_seconds={search:.3f}")


if __name__ == "__main__":
    main()
