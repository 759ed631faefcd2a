"""Test-set metrics (scikit-learn), with ``NaN`` where a metric does not apply."""
from __future__ import annotations

import warnings

import numpy as np

PROBABILITY_METRICS = ("auroc", "pr_auc", "top2_accuracy", "ece", "brier", "nll")
"""Metrics of the class probabilities alone: a random dummy gets those of its constant probabilities."""
from skinbench.vocabulary import LOWER_IS_BETTER  # noqa: E402,F401 - kept importable here
"""Calibration errors and losses; every other metric improves upwards."""
MAX_RELIABILITY_BINS = 15


def score(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, n_classes: int, ordinal: bool) -> dict[str, float]:
    """Every leaderboard metric for one prediction of the test part.

    macro-F1 uses scikit-learn's default label set (classes present in truth or
    prediction), as the thesis did; kappas use all ``n_classes`` so that the
    quadratic weights follow the declared class order. ECE, Brier and NLL score the
    probabilities as the head returned them (after any temperature it fitted on validation).
    """
    from sklearn import metrics as skm

    labels = list(range(n_classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ill-defined precision/recall on tiny test sets are scored 0
        out = {
            "macro_f1": skm.f1_score(y, pred, average="macro", zero_division=0),
            "weighted_f1": skm.f1_score(y, pred, average="weighted", zero_division=0),
            "accuracy": skm.accuracy_score(y, pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
            "mcc": skm.matthews_corrcoef(y, pred),
            "cohen_kappa": _kappa(y, pred, labels, None),
            "qwk": _kappa(y, pred, labels, "quadratic") if ordinal else np.nan,
            "auroc": auroc(y, proba, n_classes),
            "pr_auc": skm.average_precision_score(y == 1, proba[:, 1]) if n_classes == 2 and (y == 1).any() else np.nan,
            "top2_accuracy": skm.top_k_accuracy_score(y, proba, k=2, labels=labels) if n_classes > 2 else np.nan,
            "ece": expected_calibration_error(y, proba),
            # one formula for every class count (sum over classes, range [0, 2]), so binary and
            # multi-class tasks are on the same scale
            "brier": skm.brier_score_loss(y, proba, labels=labels, scale_by_half=False),
            "nll": skm.log_loss(y, proba, labels=labels),
        }
    return {k: float(v) for k, v in out.items()}


def _kappa(y: np.ndarray, pred: np.ndarray, labels: list[int], weights: str | None) -> float:
    from sklearn import metrics as skm

    value = skm.cohen_kappa_score(y, pred, labels=labels, weights=weights)
    return 0.0 if np.isnan(value) else value  # constant truth and prediction: no agreement beyond chance


def auroc(y: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    """Binary AUROC, or macro one-vs-rest over the classes present in the test part."""
    from sklearn import metrics as skm

    present = [c for c in range(n_classes) if (y == c).any() and not (y == c).all()]
    if not present:
        return np.nan
    if n_classes == 2:
        return skm.roc_auc_score(y == 1, proba[:, 1])
    return float(np.mean([skm.roc_auc_score(y == c, proba[:, c]) for c in present]))


def reliability_bins(y: np.ndarray, proba: np.ndarray, n_bins: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-label reliability: mean confidence, accuracy and size of each non-empty equal-mass bin.

    Confidence is the largest class probability; a sample is correct when that class is its
    label (Guo et al., 2017). Bin edges are quantiles of the confidences computed exactly as scikit-learn's
    ``calibration_curve(strategy="quantile")`` does (``np.percentile`` of ``linspace × 100``: a sample on an
    edge lands in the same bin; tests/test_metrics_baselines.py compares them), which returns no bin sizes, so a few extreme
    confidences never get a bin of their own. Test parts hold tens of images, hence ⌊√n⌋ bins
    (at most :data:`MAX_RELIABILITY_BINS`) by default.
    """
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    n_bins = n_bins or int(np.clip(np.sqrt(len(confidence)), 1, MAX_RELIABILITY_BINS))
    edges = np.percentile(confidence, np.linspace(0, 1, n_bins + 1) * 100)  # scikit-learn's exact edges
    bins = np.searchsorted(edges[1:-1], confidence)
    size = np.bincount(bins, minlength=n_bins)
    kept = size > 0
    mean_confidence = np.bincount(bins, confidence, n_bins)[kept] / size[kept]
    accuracy = np.bincount(bins, correct, n_bins)[kept] / size[kept]
    return mean_confidence, accuracy, size[kept]


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, n_bins: int | None = None) -> float:
    """Adaptive (equal-mass) top-label ECE: the size-weighted mean |accuracy − confidence| over
    the bins of :func:`reliability_bins`; NaN for an empty test part."""
    if len(y) == 0:
        return np.nan
    confidence, accuracy, size = reliability_bins(y, proba, n_bins)
    return float(np.sum(size * np.abs(accuracy - confidence)) / size.sum())


def confusion_batch(y: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrices (draws, K, K) for many predictions of the same truth at once."""
    draws = preds.shape[0]
    flat = (np.arange(draws)[:, None] * n_classes * n_classes + y[None, :] * n_classes + preds).ravel()
    return np.bincount(flat, minlength=draws * n_classes * n_classes).reshape(draws, n_classes, n_classes).astype(float)


def label_metrics_batch(cm: np.ndarray, ordinal: bool) -> dict[str, np.ndarray]:
    """The label-based metrics of :func:`score` from confusion matrices, vectorised over draws.

    Used for the random dummy baselines, whose expectations need >= 1,000 draws;
    ``tests/test_metrics.py`` checks it equals scikit-learn draw by draw.
    """
    true_n, pred_n, tp = cm.sum(2), cm.sum(1), np.diagonal(cm, axis1=1, axis2=2)
    n = cm.sum((1, 2))
    macro, f1 = _macro_f1_batch(true_n, pred_n, tp)
    with np.errstate(divide="ignore", invalid="ignore"):
        weighted = (f1 * true_n).sum(1) / n
        recall_present = true_n > 0
        balanced = (np.where(recall_present, tp / np.where(recall_present, true_n, 1), 0)).sum(1) / recall_present.sum(1)
        cov_yp = tp.sum(1) * n - (true_n * pred_n).sum(1)
        cov_yy = n * n - (true_n ** 2).sum(1)
        cov_pp = n * n - (pred_n ** 2).sum(1)
        mcc = np.where(cov_yy * cov_pp > 0, cov_yp / np.sqrt(cov_yy * cov_pp), 0.0)
    out = {
        "macro_f1": macro, "weighted_f1": weighted, "accuracy": tp.sum(1) / n,
        "balanced_accuracy": balanced, "mcc": mcc, "cohen_kappa": _kappa_batch(cm, None),
        "qwk": _kappa_batch(cm, "quadratic") if ordinal else np.full(len(cm), np.nan),
    }
    return out


def macro_f1_batch(cm: np.ndarray) -> np.ndarray:
    """Macro-F1 alone of :func:`label_metrics_batch` (over the classes present in truth or prediction)."""
    return _macro_f1_batch(cm.sum(2), cm.sum(1), np.diagonal(cm, axis1=1, axis2=2))[0]


def _macro_f1_batch(true_n: np.ndarray, pred_n: np.ndarray, tp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(true_n + pred_n > 0, 2 * tp / (true_n + pred_n), 0.0)
        present = (true_n + pred_n) > 0
        return (f1 * present).sum(1) / present.sum(1), f1


def _kappa_batch(cm: np.ndarray, weights: str | None) -> np.ndarray:
    k = cm.shape[1]
    n = cm.sum((1, 2))
    expected = np.einsum("di,dj->dij", cm.sum(2), cm.sum(1)) / n[:, None, None]
    if weights == "quadratic":
        w = (np.arange(k)[:, None] - np.arange(k)[None, :]) ** 2
    else:
        w = 1 - np.eye(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = 1 - (w * cm).sum((1, 2)) / (w * expected).sum((1, 2))
    return np.nan_to_num(kappa, nan=0.0)
