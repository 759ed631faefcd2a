"""The split and validation rules of the protocol (thesis Algorithm 1, Table 4.1)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from skinbench.data.protocol import label_aware_patient_split, validation_fold


@st.composite
def bin_tables(draw):
    """Random multi-task tables: patients × tasks with skewed class labels."""
    n_patients = draw(st.integers(3, 40))
    n_tasks = draw(st.integers(1, 4))
    rows_per_patient = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    rows = []
    for p in range(n_patients):
        for t in range(n_tasks):
            for _ in range(rows_per_patient):
                rows.append({"group": f"p{p}", "task": f"t{t}", "stratum": int(rng.choice(3, p=[0.7, 0.2, 0.1]))})
    return pd.DataFrame(rows), draw(st.floats(0.05, 0.5)), draw(st.integers(1, 5)), draw(st.integers(0, 1000))


def required_bins_coverable(bins: pd.DataFrame, tau: int) -> set:
    support = bins.groupby(["task", "stratum"]).size()
    return {(str(t), str(s)) for (t, s), n in support.items() if n >= tau}


@settings(max_examples=60, deadline=None)
@given(bin_tables())
def test_split_properties(case):
    bins, fraction, tau, seed = case
    test = label_aware_patient_split(bins, fraction, tau, seed)
    patients = set(bins["group"])
    train = patients - set(test)
    assert not (set(test) & train), "a patient is on both sides"
    assert set(test) <= patients
    target = max(1, math.ceil(fraction * len(patients)))
    test_rows = bins[bins["group"].isin(test)]
    covered = {(str(t), str(s)) for t, s in zip(test_rows["task"], test_rows["stratum"])}
    required = required_bins_coverable(bins, tau)
    # every bin with support >= tau is covered: the greedy cover never stops while a patient could add one
    assert required <= covered
    # the fill respects the target; only the greedy cover may exceed it
    assert len(test) >= min(target, len(patients))
    if len(test) > target:
        assert len(test) <= len(required)
    assert label_aware_patient_split(bins, fraction, tau, seed) == test


def test_thesis_scale_selects_eight_of_39_patients():
    """39 patients, 2 regions, 5 features with the thesis's skewed priors: 8 test patients (20.5%)."""
    rng = np.random.default_rng(0)
    priors = {"moisture": [52, 24, 1], "oiliness": [72, 3, 2], "elasticity": [6, 48, 23],
              "texture": [8, 49, 20], "hyperpigmentation": [8, 44, 25]}
    rows = [{"group": f"P{p}", "task": task, "stratum": int(rng.choice([-1, 0, 1], p=np.array(c) / sum(c)))}
            for p in range(39) for _ in range(2) for task, c in priors.items()]
    bins = pd.DataFrame(rows)
    test = label_aware_patient_split(bins, 0.2, 3, seed=0)
    assert len(test) == 8
    assert required_bins_coverable(bins, 3) <= {
        (t, str(s)) for t, s in zip(bins[bins.group.isin(test)].task, bins[bins.group.isin(test)].stratum)}


def test_different_seeds_give_different_fills():
    bins = pd.DataFrame({"group": [f"p{i}" for i in range(30)], "task": "t", "stratum": [0] * 30})
    splits = {tuple(label_aware_patient_split(bins, 0.2, 3, s)) for s in range(5)}
    assert len(splits) > 1


def test_validation_fold_is_patient_disjoint_and_about_one_eighth():
    rng = np.random.default_rng(1)
    groups = np.repeat([f"p{i}" for i in range(40)], 2)
    y = rng.integers(0, 3, len(groups))
    fit, val = validation_fold(y, groups, 8, seed=3)
    assert not set(groups[fit]) & set(groups[val])
    assert 0.08 <= val.mean() <= 0.2
    fit2, val2 = validation_fold(y, groups, 8, seed=3)
    assert (val == val2).all()
    assert any((validation_fold(y, groups, 8, seed=s)[1] != val).any() for s in range(4, 8))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 8), st.integers(2, 6), st.integers(3, 80))
def test_the_all_at_once_fold_search_gives_scikit_learns_folds(seed, n_folds, n_classes, n_patients):
    """The vectorised fold choice must pick exactly the parent's folds, ties included (few classes, many
    equal patients); a scikit-learn release that changes the algorithm fails here."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold
    from skinbench.data.grouped_folds import StratifiedGroupKFoldAllAtOnce

    rng = np.random.default_rng(seed)
    groups = np.sort(rng.integers(0, n_patients, size=3 * n_patients))
    y = rng.integers(0, n_classes, size=n_patients)[groups]
    k = min(n_folds, len(np.unique(groups)))
    if k < 2:
        return
    def folds(splitter):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                return [test for _, test in splitter.split(y, y, groups)]
            except ValueError as exc:  # every class smaller than k: scikit-learn refuses, and so must we
                return str(exc)

    ours = folds(StratifiedGroupKFoldAllAtOnce(k, shuffle=True, random_state=seed))
    theirs = folds(StratifiedGroupKFold(k, shuffle=True, random_state=seed))
    if isinstance(theirs, str):
        assert ours == theirs
        return
    assert len(ours) == len(theirs) == k
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
