"""Eczema severity (clear / mild / moderate / severe as 0-3) from a documented CSV layout.

No openly downloadable eczema image set with severity grades exists (SWET, Legit.Health
ASCORAD and PASSION are by request), so this plugin defines the layout a group with such
data writes once::

    <root>/eczema.csv        image,severity,subject_id[,region,skin_tone,sex,age]
    <root>/images/...        image paths in the CSV are relative to root

``severity`` is 0, 1, 2 or 3 (or clear / mild / moderate / severe); ``subject_id`` is the
person, so all their images and visits stay on one side of every split. An empty severity
means 'not graded': the row is left out and counted.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field
from skinbench.sdk import hookimpl

from .generic_csv import GenericCsv


class EczemaSeverity(GenericCsv):
    """Eczema severity 0-3 (ordinal, 4 classes), one group per subject_id."""

    name = "eczema"
    class Params(GenericCsv.Params):
        csv: str = "eczema.csv"
        group_column: str = "subject_id"
        label_columns: list[str] = Field(default_factory=lambda: ["severity"], min_length=1)
        classes: dict[str, list[Any]] = Field(default_factory=lambda: {"severity": [0, 1, 2, 3]})
        label_map: dict[str, dict[str, Any]] = Field(
            default_factory=lambda: {"severity": {"clear": 0, "mild": 1, "moderate": 2, "severe": 3}})
        ordinal: bool | list[str] = True

    meta = {
        "license": "as the user's data",
        "citation": "Task as in Kumar N, Aran O. Automated Measurement of Eczema Severity with Self-Supervised "
                    "Learning (4 severity classes).",
        "url": "",
        "notes": "Layout: eczema.csv with image, severity (0-3 or clear/mild/moderate/severe), subject_id and "
                 "optional region, skin_tone, sex, age; relative image paths are taken from root.",
    }


@hookimpl
def skinbench_datasets():
    return [EczemaSeverity]
