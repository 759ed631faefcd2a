"""scikit-learn's StratifiedGroupKFold, made fast for many patients: the folds of every cross-validation
and validation split (:func:`skinbench.data.protocol.patient_folds`, :func:`~skinbench.data.protocol.validation_fold`).

Apart from :mod:`skinbench.data.protocol` so that reading a suite does not import scikit-learn; listed in
the core modules of every cell's identity (:data:`skinbench.record.identity.CORE_MODULES`).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold


def grouped_test_folds(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int):
    """Test indices of each fold of a seeded StratifiedGroupKFold (scikit-learn's rule, scored all at once)."""
    splitter = StratifiedGroupKFoldAllAtOnce(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class" is expected on rare bins and tiny data
        return [test for _, test in splitter.split(np.zeros(len(y)), y, groups)]


class StratifiedGroupKFoldAllAtOnce(StratifiedGroupKFold):
    """scikit-learn's StratifiedGroupKFold, its per-patient fold choice scored for all folds in one numpy call.

    The parent scores the k candidate folds of each patient in a Python loop of k ``np.std`` calls: 3.6 s per
    seed for a SCIN-sized training part (2,700 patients), serial before any head can start. The same sums in
    the same order give the same folds (tests/test_protocol.py compares it with the parent)."""

    def _find_best_fold(self, y_counts_per_fold, y_cnt, group_y_counts):
        k = self.n_splits
        proposed = y_counts_per_fold[None] + np.eye(k)[:, :, None] * group_y_counts  # candidate i adds the patient
        evals = np.mean(np.std(proposed / y_cnt.reshape(1, 1, -1), axis=1), axis=1)
        samples = np.sum(y_counts_per_fold, axis=1).tolist()
        best_fold, min_eval, min_samples_in_fold = None, math.inf, math.inf
        for i, fold_eval in enumerate(evals.tolist()):  # the parent's rule: lowest spread, ties to the smaller fold
            close = math.isfinite(min_eval) and abs(fold_eval - min_eval) <= 1e-8 + 1e-5 * abs(min_eval)  # np.isclose
            if fold_eval < min_eval or (close and samples[i] < min_samples_in_fold):
                best_fold, min_eval, min_samples_in_fold = i, fold_eval, samples[i]
        return best_fold
