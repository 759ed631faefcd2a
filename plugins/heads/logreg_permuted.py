"""A null control: the logreg probe trained on permuted labels, so any 'signal' it shows is noise.

Put it next to the real heads of a suite (``heads: [logreg, logreg-permuted]``): on your data and
your split, its configurations should be called ``chance``. One above chance means the protocol
leaks (a patient on both sides, a label in the features) or the verdicts are too lenient.
``benchmarks/null_control.py`` runs 24 of them on the demo."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from pydantic import NonNegativeInt
from skinbench.sdk import hookimpl
from skinbench.plugins.heads.logreg import LogRegProbe


class PermutedLabelsProbe(LogRegProbe):
    """The logreg probe fitted on permuted training and validation labels (the test labels stay real)."""

    name = "logreg-permuted"

    class Params(LogRegProbe.Params):
        permutation: NonNegativeInt = 0
        """Which permutation (with the seed): one null head per value."""

    meta = {"license": "Apache-2.0", "citation": "Permutation null control (Ojala & Garriga, JMLR 2010)"}

    def fit(self, train, val, n_classes, seed, backbone=None):
        rng = np.random.default_rng([seed, self.config["permutation"]])
        # copies: the parts are shared with the suite's other heads, which must see the real labels
        train, val = replace(train, y=rng.permutation(train.y)), replace(val, y=rng.permutation(val.y))
        super().fit(train, val, n_classes, seed, backbone)


@hookimpl
def skinbench_heads():
    return [PermutedLabelsProbe]
