"""The real-only baseline: no synthetic images."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from skinbench.sdk import Augmenter, hookimpl, PluginParams, Task


class NoAugmenter(Augmenter):
    """Real images only (the thesis's 'R' regime)."""

    name = "none"

    class Params(PluginParams):
        """No parameters: any given is an error."""

    runtime_params = frozenset()
    meta = {"license": "Apache-2.0"}

    def augment(self, train: pd.DataFrame, task: Task, seed: int, workdir: Path) -> pd.DataFrame:
        return train.iloc[0:0].copy()


@hookimpl
def skinbench_augmenters():
    return [NoAugmenter]
