"""Metrics and chance baselines against hand-computed values and scikit-learn."""
from __future__ import annotations

import numpy as np
import pytest

from skinbench.baselines import dummy_scores
from skinbench.metrics import confusion_batch, label_metrics_batch, score


def test_most_frequent_on_hand_built_split():
    # train: class 0 majority; test: 6 × class 0, 3 × class 1, 1 × class 2
    y_train = np.array([0, 0, 0, 0, 1, 1, 2])
    y_test = np.array([0] * 6 + [1] * 3 + [2])
    metrics, proba = dummy_scores("most_frequent", y_train, y_test, 3, ordinal=True)
    f1_majority = 2 * 6 / (6 + 10)  # precision 6/10, recall 1
    assert metrics["accuracy"] == pytest.approx(0.6)
    assert metrics["macro_f1"] == pytest.approx(f1_majority / 3)  # sklearn's label set: classes in truth or prediction
    assert metrics["weighted_f1"] == pytest.approx(0.6 * f1_majority)
    assert metrics["balanced_accuracy"] == pytest.approx(1 / 3)
    assert metrics["mcc"] == 0 and metrics["cohen_kappa"] == 0 and metrics["qwk"] == 0
    assert metrics["auroc"] == pytest.approx(0.5)
    assert (proba.argmax(1) == 0).all()


def test_stratified_expectation_is_stable_and_close_to_theory():
    rng = np.random.default_rng(0)
    y_train = rng.choice(2, 200, p=[0.8, 0.2])
    y_test = np.array([0] * 16 + [1] * 4)
    a, _ = dummy_scores("stratified", y_train, y_test, 2, ordinal=False, draws=1000, seed=0)
    b, _ = dummy_scores("stratified", y_train, y_test, 2, ordinal=False, draws=1000, seed=0)
    assert a == b
    c, _ = dummy_scores("stratified", y_train, y_test, 2, ordinal=False, draws=1000, seed=1)
    assert abs(a["macro_f1"] - c["macro_f1"]) < 0.02  # an expectation, not one lucky draw
    prior = np.bincount(y_train) / len(y_train)
    assert a["accuracy"] == pytest.approx((prior * np.array([0.8, 0.2])).sum(), abs=0.01)
    assert a["balanced_accuracy"] == pytest.approx(0.5, abs=0.01)


def test_uniform_samples_only_classes_seen_in_training():
    _, proba = dummy_scores("uniform", np.array([0, 0, 2]), np.array([0, 1, 2]), 3, ordinal=True)
    assert proba[0].tolist() == [0.5, 0.0, 0.5]


@pytest.mark.parametrize("k", [2, 3, 5])
def test_vectorised_metrics_equal_scikit_learn(k):
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 25)
    preds = rng.integers(0, k, (40, 25))
    preds[:12] = rng.integers(0, 2, (12, 25))  # draws that never predict some classes
    batch = label_metrics_batch(confusion_batch(y, preds, k), ordinal=True)
    for d in range(len(preds)):
        ref = score(y, preds[d], np.eye(k)[preds[d]], k, ordinal=True)
        for name, values in batch.items():
            assert values[d] == pytest.approx(ref[name], abs=1e-9), (name, d)


def test_score_applicability():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4]])
    binary = score(y, proba.argmax(1), proba, 2, ordinal=False)
    assert binary["auroc"] == 1.0 and binary["pr_auc"] == 1.0
    assert np.isnan(binary["top2_accuracy"]) and np.isnan(binary["qwk"])
    y3 = np.array([0, 1, 2, 2])
    p3 = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.1, 0.3, 0.6], [0.3, 0.6, 0.1]])
    multi = score(y3, p3.argmax(1), p3, 3, ordinal=True)
    assert multi["top2_accuracy"] == 0.75 and np.isnan(multi["pr_auc"]) and not np.isnan(multi["qwk"])


# ---------------------------------------------------------------- calibration


def test_reliability_bins_match_scikit_learn_quantile_calibration_curve():
    from sklearn.calibration import calibration_curve

    from skinbench.metrics import reliability_bins

    rng = np.random.default_rng(3)
    positive = rng.uniform(0.5, 1.0, 200)  # top-label confidences of a binary problem
    proba = np.column_stack([positive, 1 - positive])
    y = np.where(rng.uniform(size=200) < positive ** 2, 0, 1)  # overconfident: accuracy below confidence
    confidence, accuracy, size = reliability_bins(y, proba, n_bins=8)
    prob_true, prob_pred = calibration_curve(y == 0, positive, n_bins=8, strategy="quantile")
    np.testing.assert_allclose(confidence, prob_pred)
    np.testing.assert_allclose(accuracy, prob_true)
    assert size.sum() == 200 and size.min() >= 24  # equal-mass bins


def test_ece_brier_nll_against_hand_computed_values():
    from skinbench.metrics import expected_calibration_error

    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.1, 0.3, 0.6], [0.3, 0.6, 0.1]])
    metrics = score(y, proba.argmax(1), proba, 3, ordinal=True)
    assert metrics["brier"] == pytest.approx(np.mean([0.26, 1.14, 0.26, 1.26]))  # Σ_k (p_k − [y = k])²
    assert metrics["nll"] == pytest.approx(-np.mean(np.log([0.6, 0.2, 0.6, 0.1])))
    # ⌊√4⌋ = 2 bins split at the median confidence 0.6; ties stay in the lower bin, as in
    # scikit-learn: {0.6, 0.6, 0.6} with 2 of 3 correct, and {0.7} wrong
    assert metrics["ece"] == pytest.approx(0.75 * abs(2 / 3 - 0.6) + 0.25 * abs(0 - 0.7))
    assert expected_calibration_error(y, proba, n_bins=1) == pytest.approx(abs(0.5 - 0.625))
    calibrated = np.tile([0.75, 0.25], (8, 1))
    assert expected_calibration_error(np.array([0] * 6 + [1] * 2), calibrated) == pytest.approx(0.0)


def test_dummies_are_scored_on_their_constant_probabilities():
    y_train = np.array([0, 0, 0, 1])
    y_test = np.array([0, 0, 1, 1])
    stratified, proba = dummy_scores("stratified", y_train, y_test, 2, ordinal=False, draws=50)
    assert proba[0].tolist() == [0.75, 0.25]
    assert stratified["brier"] == pytest.approx(np.mean([2 * 0.25 ** 2] * 2 + [2 * 0.75 ** 2] * 2))
    assert stratified["nll"] == pytest.approx(-np.mean(np.log([0.75, 0.75, 0.25, 0.25])))
    assert stratified["ece"] == pytest.approx(0.75 - 0.5)  # confidence 0.75 everywhere, half of it right
    most_frequent, _ = dummy_scores("most_frequent", y_train, y_test, 2, ordinal=False)
    assert most_frequent["brier"] == pytest.approx(1.0)  # certain and wrong on half the images
    assert most_frequent["nll"] > 10  # log loss of a zero probability on the true class (clipped)


def test_reliability_bins_equal_scikit_learns_quantile_calibration_curve():
    """200 random test parts, ties and edge samples included: the same bins, accuracies and confidences."""
    from sklearn.calibration import calibration_curve

    from skinbench.metrics import reliability_bins

    rng = np.random.default_rng(0)
    for case in range(200):
        n, k = int(rng.integers(4, 60)), int(rng.integers(2, 5))
        proba = rng.dirichlet(np.ones(k), n)
        if case % 3 == 0:
            proba = np.round(proba, 1) + 1e-9  # many ties: samples exactly on quantile edges
            proba /= proba.sum(1, keepdims=True)
        y = rng.integers(0, k, n)
        n_bins = int(rng.integers(2, 8))
        confidence, accuracy, size = reliability_bins(y, proba, n_bins)
        correct = (proba.argmax(1) == y).astype(int)
        reference_true, reference_pred = calibration_curve(correct, proba.max(1), n_bins=n_bins, strategy="quantile")
        np.testing.assert_allclose(accuracy, reference_true, err_msg=f"case {case}")
        np.testing.assert_allclose(confidence, reference_pred, err_msg=f"case {case}")
        assert size.sum() == n
