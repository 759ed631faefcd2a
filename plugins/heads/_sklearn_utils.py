"""Helpers shared by the scikit-learn heads (``logreg``, ``knn``). Leading underscore: not a plugin module.

Both heads run their fit and predict under :func:`one_thread`: OpenBLAS and
OpenMP split sums differently with the thread count (a whitened randomized PCA of 7,000 × 768
random features came out up to 7.9 apart with 1 and with 2 BLAS threads: near-equal eigenvalues),
so pinning one thread makes a result independent of the machine's and the executor's thread
settings. It is also faster here: these problems are too small to split (that PCA took 1.4-1.9 s
on one thread and 4.1 s on two on the shared 2-core machine).
"""
from __future__ import annotations

import functools

import numpy as np
from threadpoolctl import ThreadpoolController


@functools.cache
def _thread_pools() -> ThreadpoolController:
    """The BLAS and OpenMP libraries loaded, found once: listing them takes 20-90 ms a call on the
    shared machine. The heads' modules import scikit-learn (and with it NumPy's and SciPy's BLAS)
    before any fit, and the registry imports every plugin before any cell runs."""
    return ThreadpoolController()


def one_thread():
    """Context manager: every BLAS and OpenMP pool at one thread, restored on exit."""
    return _thread_pools().limit(limits=1)


def over_all_classes(values: np.ndarray, classes: np.ndarray, n_classes: int, fill: float) -> np.ndarray:
    """(n, K) array with the estimator's columns (one per class it saw, in ``classes``) in place
    and ``fill`` for the classes absent from its training part."""
    out = np.full((len(values), n_classes), fill, dtype=np.float64)
    out[:, np.asarray(classes, dtype=np.int64)] = values
    return out
