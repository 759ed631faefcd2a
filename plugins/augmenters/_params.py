"""Typed parameter pieces the augmenters share: the oversampling policy and ``value | [low, high]`` ranges."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field
from skinbench.sdk import POLICIES, PluginParams


def _ordered(pair: list) -> list:
    if pair[0] > pair[1]:
        raise ValueError(f"range {pair} has low > high")
    return pair


def _fixed_as_range(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value, value]
    if isinstance(value, list) and len(value) == 1:
        return value * 2
    return value


def pair_of(item: Any) -> Any:
    """A ``[low, high]`` list of ``item`` values with low <= high."""
    return Annotated[list[item], Field(min_length=2, max_length=2), AfterValidator(_ordered)]


def value_or_range(item: Any) -> Any:
    """A ``[low, high]`` range each draw samples from (jitter); a single value ``v`` means ``[v, v]``."""
    return Annotated[pair_of(item), BeforeValidator(_fixed_as_range)]


def bounds(value: list[float]) -> tuple[float, float]:
    """(low, high) of a :func:`value_or_range` parameter."""
    return float(value[0]), float(value[1])


class OversamplingParams(PluginParams):
    """How many synthetic images each (task, class) bucket gets (:func:`skinbench.oversampling.synthetic_counts`)."""

    policy: Literal[POLICIES] = Field("proportional", description="proportional (+amount per bucket), balance (top "
                                                                    "up to the majority) or per_image (amount each)")
    amount: Annotated[float, Field(ge=0)] = Field(0.8, description="+80% per bucket (proportional) or images per "
                                                                    "real image (per_image)")
    min_support: Annotated[int, Field(ge=0)] = Field(5, description="balance: classes with fewer real samples are "
                                                                     "not topped up")
