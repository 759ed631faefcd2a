"""One vocabulary: the words and numbers every part of skinbench prints or stores, defined once.

Plugin kinds, the chance baselines' names, the metrics and which way each improves, the verdict and
effect words, the smallest test class worth trusting, and how numbers, intervals and p-values are
written, so a table, a page of the site and the terminal never disagree.
"""
from __future__ import annotations

import math
from typing import Any

KINDS = {"datasets": "dataset", "backbones": "backbone", "augmenters": "augmenter", "heads": "head"}
"""Suite key -> plugin kind."""

DUMMIES = ("most_frequent", "uniform", "stratified")
DUMMY_HEADS = tuple(f"dummy:{kind}" for kind in DUMMIES)
STRATIFIED = "dummy:stratified"
"""The primary chance comparator; a verdict above chance is judged against the best of :data:`DUMMY_HEADS`."""
REAL_ONLY = "none"
"""The augmenter every augmentation effect is measured against."""

FULL_DATA = "all"
"""The learning-curve ``point`` of a row trained on every training patient: the ordinary leaderboard row."""

METRICS = (
    "macro_f1", "weighted_f1", "accuracy", "balanced_accuracy", "mcc", "cohen_kappa",
    "qwk", "auroc", "pr_auc", "top2_accuracy", "ece", "brier", "nll",
)
"""Every stored test metric of a row."""
LOWER_IS_BETTER = frozenset({"ece", "brier", "nll"})
"""The metrics where smaller is better; every other one of :data:`METRICS` improves upwards."""
LABEL_METRICS = ("macro_f1", "weighted_f1", "accuracy", "balanced_accuracy", "mcc", "cohen_kappa", "qwk")
"""Metrics computable from confusion matrices: these get patient-bootstrap intervals."""

VERDICTS = ("above_chance", "chance", "below_chance")
VERDICT_TEXT = {"above_chance": "above chance", "chance": "chance", "below_chance": "below chance"}
EFFECTS = ("helps", "no_difference", "hurts")

MIN_TEST_IMAGES = 3
"""Fewer test images of a class than this make its F1, and the task's macro-F1, volatile: warned about."""

MISSING = "–"
MINUS = "−"
"""Negative numbers print with a minus sign, not a hyphen, everywhere."""


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_number(value: Any, digits: int = 2, signed: bool = False) -> str:
    """``0.62``; ``+0.12`` / ``−0.12`` when ``signed`` (never a signed zero); :data:`MISSING` when absent."""
    if _absent(value):
        return MISSING
    text = f"{float(value):+.{digits}f}" if signed else f"{float(value):.{digits}f}"
    if signed and float(text) == 0:
        text = text[1:]  # neither "+0.00" nor "-0.00": the sign is below the precision
    return text.replace("-", MINUS)


def format_interval(value: Any, low: Any, high: Any, digits: int = 2, signed: bool = False) -> str:
    """``0.62 [0.41, 0.80]``; the value alone when there is no interval."""
    text = format_number(value, digits, signed)
    if _absent(value) or _absent(low) or _absent(high):
        return text
    return f"{text} [{format_number(low, digits, signed)}, {format_number(high, digits, signed)}]"


def format_rank(rank: Any, low: Any, high: Any) -> str:
    """``2 [1–4]``: a rank with its bootstrap rank interval; ``2 [2]`` when every resample agrees."""
    if _absent(rank):
        return MISSING
    text = f"{float(rank):g}"
    if _absent(low) or _absent(high):
        return text
    return f"{text} [{float(low):g}]" if low == high else f"{text} [{float(low):g}–{float(high):g}]"


def format_p(p: Any) -> str:
    """``0.012``, ``< 0.001`` below a thousandth, :data:`MISSING` when absent."""
    if _absent(p):
        return MISSING
    return "< 0.001" if float(p) < 0.001 else f"{float(p):.3f}"
