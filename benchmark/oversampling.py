"""How many synthetic images each (task, class) bucket of the training part gets.

Shared by every augmenter so that "comparing augmentation strategies" compares
generators, not bookkeeping.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

POLICIES = ("proportional", "balance", "per_image")


def synthetic_counts(labels: Sequence, policy: str = "proportional", amount: float = 0.8, min_support: int = 5) -> dict:
    """Number of synthetic images per class value.

    - ``proportional`` (the thesis, the default): ``round(amount * n_c)`` per class, so the
      class distribution is kept and rare classes are not forced into balance.
    - ``balance``: top every class with at least ``min_support`` real samples up to the majority count.
    - ``per_image``: ``amount`` synthetic images per real image (Sagers et al. used 10).
    """
    counts = Counter(labels)
    if policy == "proportional":
        return {c: int(math.floor(amount * n + 0.5)) for c, n in counts.items()}
    if policy == "balance":
        top = max(counts.values(), default=0)
        return {c: (top - n if n >= min_support else 0) for c, n in counts.items()}
    if policy == "per_image":
        return {c: int(amount) * n for c, n in counts.items()}
    raise ValueError(f"unknown oversampling policy '{policy}'; known: {', '.join(POLICIES)}")


def assign_sources(labels: Sequence, counts: dict, rng) -> list[int]:
    """Row indices to use as sources, cycling through each class's rows in a seeded order."""
    chosen: list[int] = []
    for cls, k in counts.items():
        rows = [i for i, v in enumerate(labels) if v == cls]
        if not rows or k <= 0:
            continue
        order = list(rng.permutation(rows))
        chosen.extend(int(order[j % len(order)]) for j in range(k))
    return chosen
