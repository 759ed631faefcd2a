"""The cosmetic wide-CSV format of the thesis: one row per patient region, one image and label per feature.

Columns: ``patient_id``, optional ``region``/``skin_tone``/``sex``/``age``, and for every
feature ``<feature>_img`` (image path, relative to the CSV's folder or absolute) and
``<feature>`` (label -1/0/1, empty when not measured).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field
from skinbench.sdk import Dataset, hookimpl, image_problem, PluginParams, Task

from ._common import Problems, csv_lines, has_columns, read_csv

FEATURES = ["moisture", "oiliness", "elasticity", "texture", "hyperpigmentation"]
RAW_CLASSES = [-1, 0, 1]
THESIS_LABEL_MAPS = {"moisture": {-1: -1, 0: 0, 1: 0}, "oiliness": {-1: -1, 0: 0, 1: 0}}
"""Seed 000 §4.1: moisture (dehydrated vs hydrated) and oiliness (dry vs non-dry) are
binarised by merging the two minority classes, which had no test sample otherwise."""
METADATA = ("region", "skin_tone", "sex", "age", "split")
"""Carried into the samples when present; ``split`` (train/test) serves ``protocol.split_column``."""


class CosmeticCSV(Dataset):
    """Cosmetic skin features (moisture, oiliness, elasticity, texture, hyperpigmentation) from a wide CSV."""

    name = "cosmetic-csv"

    class Params(PluginParams):
        csv: str = ""
        root: str = ""
        """Folder relative image paths are taken from (default: the CSV's folder)."""
        features: list[str] = Field(default_factory=lambda: list(FEATURES), min_length=1)
        image_column: str = "{feature}_img"
        label_column: str = "{feature}"
        group_column: str = "patient_id"
        label_maps: dict[str, dict[int, Any]] = Field(default_factory=lambda: THESIS_LABEL_MAPS)
        """Feature -> {raw value: label}; the default binarises moisture and oiliness as the thesis did."""

    meta = {"license": "data: per study", "citation": "Mind the Gap: Can Synthetic Augmentation Boost Skin Feature Classification? (MSc thesis, UCL, 2025), §4.1, Algorithm 1"}

    def tasks(self) -> list[Task]:
        return read_wide_csv(Path(self.config["csv"]), self.name, self.config)

    def split_table(self, tasks: list[Task]) -> pd.DataFrame:
        """Every feature the CSV holds, not only the selected ``features``: the split belongs to the data."""
        csv = Path(self.config["csv"])
        header = pd.read_csv(csv, nrows=0).columns
        present = [f for f in FEATURES if self.config["label_column"].format(feature=f) in header
                   and self.config["image_column"].format(feature=f) in header]
        if set(present) <= set(self.config["features"]):
            return super().split_table(tasks)
        every = read_wide_csv(csv, self.name, {**self.config, "features": sorted(set(present) | set(self.config["features"]))})
        return super().split_table(every)


def read_wide_csv(csv: Path, dataset: str, config: dict[str, Any]) -> list[Task]:
    """One task per feature; every problem in the file is collected before raising."""
    problems = Problems()
    table = read_csv(csv, problems, "set the dataset's 'csv' parameter to the wide CSV")
    if table is None:
        problems.raise_if_any()
    features = list(config["features"])
    columns = {f: (config["image_column"].format(feature=f), config["label_column"].format(feature=f)) for f in features}
    required = [config["group_column"], *[c for pair in columns.values() for c in pair]]
    if not has_columns(table, required, csv, problems):
        problems.raise_if_any()
    root = Path(config["root"]) if config["root"] else csv.parent
    lines = csv_lines(table)
    present = [m for m in METADATA if m in table]
    label_maps = {f: {int(k): v for k, v in (config["label_maps"] or {}).get(f, {}).items()} for f in features}
    tasks = []
    for feature in features:
        image_col, label_col = columns[feature]
        rows, unlabelled = [], []
        for idx, raw in table[label_col].items():
            if raw.strip() == "":
                unlabelled.append(f"{csv} line {lines[idx]}")
                continue
            where = f"{csv} line {lines[idx]}, column '{label_col}'"
            try:
                value = int(float(raw))
            except ValueError:
                problems.add(f"{where}: label {raw!r} is not a number; use -1, 0 or 1")
                continue
            if value not in RAW_CLASSES:
                problems.add(f"{where}: label {value} is not one of {RAW_CLASSES}")
                continue
            image = Path(table.at[idx, image_col])
            image = image if image.is_absolute() else root / image
            why = image_problem(image) if table.at[idx, image_col] else "no image path given"
            if why:
                problems.add(f"{image}: {why} ({csv} line {lines[idx]}, column '{image_col}')")
                continue
            row = {"image": str(image), "label": label_maps[feature].get(value, value), "stratum": value,
                   "group": table.at[idx, config["group_column"]]}
            row.update({m: table.at[idx, m] for m in present})
            rows.append((lines[idx], row))
        samples = pd.DataFrame([r for _, r in rows], columns=["image", "label", "stratum", "group", *present],
                               index=pd.Index([line for line, _ in rows], name="csv_line"))
        classes = sorted({label_maps[feature].get(c, c) for c in RAW_CLASSES})
        tasks.append(Task(dataset=dataset, name=feature, classes=classes, samples=samples,
                          ordinal=len(classes) > 2, description=f"{feature} from {csv.name}",
                          origins=[f"{csv} line {line}" for line, _ in rows],
                          left_out={f"rows with no {label_col}": (len(unlabelled), unlabelled[:5])} if unlabelled else {}))
    problems.raise_if_any()
    return tasks


@hookimpl
def skinbench_datasets():
    return [CosmeticCSV]
