"""Quality-control thresholds for synthetic images (thesis §4.2), checked against logged metrics.

Thresholds are optional augmenter parameters: an unset one keeps everything, so by default the
metrics of :mod:`skinbench.quality` are only logged (as in the thesis). They are applied to the
metrics stored with each image, so changing a threshold never needs the generator again.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Mapping, Sequence, Union

from pydantic import Field, field_validator

from skinbench.api import PluginParams

ClassKey = Union[str, int, float]
"""A class value as a YAML key: ``-1``, ``0`` or ``"mild"``."""


class QualityThresholds(PluginParams):
    """The thresholds an augmenter accepts; subclass its ``Params`` from this."""

    max_lpips: Annotated[float, Field(ge=0)] | None = None
    min_blur_ratio: Annotated[float, Field(ge=0)] | None = None
    max_blur_ratio: Annotated[float, Field(ge=0)] | None = None
    min_ssim: Annotated[float, Field(ge=-1, le=1)] | None = None
    specular_ranges: dict[str, dict[ClassKey, Annotated[list[float], Field(min_length=2, max_length=2)]]] = Field(
        {}, description="{task: {class: [low, high]}} acceptable specular coverage (fractions)")

    @field_validator("specular_ranges")
    @classmethod
    def _ordered_fractions(cls, ranges: dict) -> dict:
        for task, classes in ranges.items():
            for label, (low, high) in classes.items():
                if not 0 <= low <= high <= 1:
                    raise ValueError(f"specular_ranges.{task}.{label} must be [low, high] with "
                                     "0 <= low <= high <= 1")
        return ranges


CHECKS = (("max_lpips", "lpips", lambda value, limit: value <= limit),
          ("min_blur_ratio", "blur_ratio", lambda value, limit: value >= limit),
          ("max_blur_ratio", "blur_ratio", lambda value, limit: value <= limit),
          ("min_ssim", "ssim", lambda value, limit: value >= limit))
"""(threshold, metric it bounds, test a kept image passes)."""


def qc_failures(thresholds: Mapping[str, Any], metrics: Mapping[str, float],
                specular_range: Sequence[float] | None = None) -> list[str]:
    """Names of the thresholds an image misses (``specular_range`` for its own class, if any).

    A NaN metric (not computable, e.g. LPIPS without its weights) misses none."""
    failed = [name for name, metric, passes in CHECKS
              if thresholds.get(name) is not None and not math.isnan(metrics[metric])
              and not passes(metrics[metric], thresholds[name])]
    coverage = metrics["specular_coverage"]
    if specular_range is not None and not math.isnan(coverage) \
            and not specular_range[0] <= coverage <= specular_range[1]:
        failed.append("specular_range")
    return failed
