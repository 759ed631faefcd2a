"""Helpers shared by the scikit-learn heads (``logreg``, ``knn``). Leading underscore: not a plugin module.

Both heads run their fit and predict under ``threadpoolctl.threadpool_limits(1)``: OpenBLAS and
OpenMP split sums differently with the thread count (a randomized PCA fitted with 1 and with 2
BLAS threads differs in the first digit on near-equal eigenvalues), so pinning one thread makes a
result independent of the machine's and the executor's thread settings. It is also faster here:
these problems are too small to split (the 10,000 × 768 PCA took 1.4-1.9 s on one thread, 4.1 s
on two, on the shared 2-core machine).
"""
from __future__ import annotations

import numpy as np


def over_all_classes(values: np.ndarray, classes: np.ndarray, n_classes: int, fill: float) -> np.ndarray:
    """(n, K) array with the estimator's columns (one per class it saw, in ``classes``) in place
    and ``fill`` for the classes absent from its training part."""
    out = np.full((len(values), n_classes), fill, dtype=np.float64)
    out[:, np.asarray(classes, dtype=np.int64)] = values
    return out
