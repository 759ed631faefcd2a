"""SCIN, Google's crowd-sourced Skin Condition Image Network: conditions and skin tone from phone photos."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field
from skinbench.sdk import ConfigError, hookimpl, Task

from ._common import (
    FileDataset,
    FileParams,
    Problems,
    duplicated_ids,
    has_columns,
    optional_text,
    read_csv,
    row_origins,
)

CONDITION_COLUMN = "weighted_skin_condition_label"
GRADABLE_COLUMN = "dermatologist_gradable_for_skin_condition_1"
IMAGE_SLOTS = ("image_1_path", "image_2_path", "image_3_path")
TONE_TASKS = {
    "fitzpatrick": ("dermatologist_fitzpatrick_skin_type_label_1", [f"FST{i}" for i in range(1, 7)]),
    "monk_us": ("monk_skin_tone_label_us", [str(i) for i in range(1, 11)]),
    "monk_india": ("monk_skin_tone_label_india", [str(i) for i in range(1, 11)]),
}
TASKS = ("condition", *TONE_TASKS)
UNKNOWN_TONES = {"", "NONE_IDENTIFIED", "NONE_SELECTED", "nan"}
RARE_POLICIES = ("drop", "other")


class Scin(FileDataset):
    """SCIN: top-k skin conditions (and optional skin-tone tasks); one group per case, joined across shared images."""

    name = "scin"
    class Params(FileParams):
        cases_csv: str = "dataset/scin_cases.csv"
        labels_csv: str = "dataset/scin_labels.csv"
        tasks: list[str] = Field(default_factory=lambda: ["condition"], min_length=1)
        top_k: int = Field(10, ge=1)
        rare_conditions: Literal["drop", "other"] = "drop"
        """'drop' leaves cases outside the top k out; 'other' labels them 'other'."""
        gradable_values: list[str] = Field(default_factory=lambda: ["DEFAULT_YES_IMAGE_QUALITY_SUFFICIENT"])
        skin_tone: str = "fitzpatrick_skin_type"
        """Metadata column: self-reported FST; or a monk/dermatologist column."""

    meta = {
        "license": "SCIN Data Use License (no attempt to re-identify subjects)",
        "citation": "Ward A, Li J, Wang J, et al. Creating an Empirical Dermatology Dataset Through Crowdsourcing "
                    "With Web Search Advertisements. JAMA Network Open 7(11), e2446615 (2024).",
        "url": "https://github.com/google-research-datasets/scin",
        "source": ["SCIN"],
        "notes": "root is the folder holding dataset/ as copied from gs://dx-scin-public-data (image paths in the "
                 "CSV are bucket-relative). Group = case_id; cases that share an identical image file are "
                 "joined. The condition is the highest weight in weighted_skin_condition_label (ties: "
                 "alphabetical); cases not gradable for skin condition or without a condition label are left "
                 "out and counted.",
    }

    def tasks(self) -> list[Task]:
        names = self.chosen("tasks", TASKS)
        self.choice("rare_conditions", RARE_POLICIES)
        if not isinstance(self.config["top_k"], int) or self.config["top_k"] < 1:
            raise ConfigError(f"dataset 'scin': top_k must be a positive integer; got {self.config['top_k']!r}")
        root = self.root_dir()
        problems = Problems()
        cases = self._joined_tables(root, names, problems)
        images = self._image_rows(root, cases)
        no_images = int((cases[list(IMAGE_SLOTS)] == "").all(axis=1).sum())
        tasks = []
        for name in names:
            case_labels, excluded, classes = self._case_labels(name, cases, problems)
            rows = images[images["case"].map(case_labels).notna()]
            tasks.append(self.assemble(
                name, classes, rows.assign(label=rows["case"].map(case_labels)).drop(columns="case"), problems,
                excluded={"cases without any image path": no_images, **excluded},
                ordinal=name in TONE_TASKS, description=self._description(name), drop_empty_classes=name in TONE_TASKS))
        problems.raise_if_any()
        return tasks

    def _joined_tables(self, root: Path, names: list[str], problems: Problems) -> pd.DataFrame:
        """Cases joined with their labels on case_id (read as text: the ids are signed 64-bit integers)."""
        cases_path, labels_path = root / self.config["cases_csv"], root / self.config["labels_csv"]
        hint = "copy dataset/ from gs://dx-scin-public-data into root, or set params.{}"
        cases = read_csv(cases_path, problems, hint.format("cases_csv"))
        labels = read_csv(labels_path, problems, hint.format("labels_csv"))
        label_columns = [c for n in names for c in ([CONDITION_COLUMN, GRADABLE_COLUMN] if n == "condition"
                                                     else [TONE_TASKS[n][0]])]
        if cases is None or labels is None \
                or not has_columns(cases, ["case_id", *IMAGE_SLOTS], cases_path, problems) \
                or not has_columns(labels, ["case_id", *label_columns], labels_path, problems):
            problems.raise_if_any()
        if self.config["skin_tone"] not in {*cases.columns, *labels.columns}:
            problems.add(f"{cases_path} / {labels_path}: no column {self.config['skin_tone']!r} for params.skin_tone")
        duplicated_ids(cases, "case_id", cases_path, problems)
        duplicated_ids(labels, "case_id", labels_path, problems)
        problems.raise_if_any()
        cases = cases.assign(origin=row_origins(cases_path, cases, "case_id"))
        labels = labels.assign(label_origin=row_origins(labels_path, labels, "case_id"))
        joined = cases.merge(labels, on="case_id", how="left", suffixes=("", "_labels"), indicator=True)
        return joined.assign(_merge=joined["_merge"].astype(str)).fillna("")

    def _image_rows(self, root: Path, cases: pd.DataFrame) -> pd.DataFrame:
        """One row per filled image slot; ``case`` points back at the case row."""
        metadata = pd.DataFrame({
            "case": cases.index,
            "group": cases["case_id"],
            "label_origin": cases["label_origin"],
            "region": _body_site(cases),
            "skin_tone": cases[self.config["skin_tone"]].map(_tone),
            "sex": optional_text(cases, "sex_at_birth"),
            "age": optional_text(cases, "age_group", ("", "AGE_UNKNOWN")),
        })
        slots = [metadata.assign(image=[str(root / p) for p in cases[slot]],
                                 origin=cases["origin"] + f", {slot}")[cases[slot] != ""]
                 for slot in IMAGE_SLOTS]
        return pd.concat(slots).sort_values(["case", "origin"], kind="stable").reset_index(drop=True)

    def _case_labels(self, name: str, cases: pd.DataFrame, problems: Problems) -> tuple[pd.Series, dict, list]:
        """Label per case row (None = left out), the count of cases left out per reason, and the classes."""
        has_labels = cases["_merge"] == "both"
        excluded = {f"cases without a row in {self.config['labels_csv']}": int((~has_labels).sum())}
        if name in TONE_TASKS:
            column, classes = TONE_TASKS[name]
            tone = cases[column].map(_tone).where(has_labels, None)
            excluded[f"cases without {column}"] = int((tone.isna() & has_labels).sum())
            return tone, excluded, classes
        gradable = cases[GRADABLE_COLUMN].isin(self.config["gradable_values"])
        top = pd.Series([_top_condition(text, origin, problems) if ok else None
                         for text, origin, ok in zip(cases[CONDITION_COLUMN], cases["label_origin"], gradable)],
                        index=cases.index, dtype=object)
        excluded["cases not gradable for skin condition"] = int((has_labels & ~gradable).sum())
        excluded["gradable cases without a condition label"] = int((gradable & top.isna()).sum())
        counts = top.value_counts()
        kept = sorted(counts.index, key=lambda c: (-counts[c], c))[: self.config["top_k"]]
        rare = top.notna() & ~top.isin(kept)
        if self.config["rare_conditions"] == "other":
            return top.where(~rare, "other"), excluded, [*kept, "other"]
        excluded[f"cases whose condition is outside the top {self.config['top_k']}"] = int(rare.sum())
        return top.where(~rare, None), excluded, kept

    def _description(self, name: str) -> str:
        if name == "condition":
            rest = "labelled 'other'" if self.config["rare_conditions"] == "other" else "left out"
            what = f"SCIN condition: the {self.config['top_k']} most frequent conditions, the rest {rest}."
        else:
            what = f"SCIN {name}: {TONE_TASKS[name][0]} as an ordinal task."
        return f"{what} {self.meta.notes}"


def _top_condition(text: str, origin: str, problems: Problems) -> str | None:
    """The highest-weight condition of a weighted label such as "{'Eczema': 0.69, 'Psoriasis': 0.31}"."""
    if not text.strip():
        return None
    try:
        weights = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        weights = None
    if not isinstance(weights, dict) or not all(isinstance(w, (int, float)) for w in weights.values()):
        problems.add(f"{origin}: {CONDITION_COLUMN} {text!r} is not a dict of condition weights; "
                     "expected e.g. {'Eczema': 0.69, 'Psoriasis': 0.31}")
        return None
    return min(weights, key=lambda c: (-weights[c], str(c))) if weights else None


def _tone(value: str) -> str | None:
    """Skin tone as text: FST labels as they are, Monk values '3.0' as '3', unknowns as None."""
    value = value.strip()
    if value in UNKNOWN_TONES:
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


def _body_site(cases: pd.DataFrame) -> pd.Series:
    """The one body part ticked ('YES') for a case, 'multiple' when several, None when none."""
    columns = [c for c in cases.columns if c.startswith("body_parts_")]
    if not columns:
        return pd.Series(None, index=cases.index, dtype=object)
    ticked = cases[columns].eq("YES")
    first = ticked.idxmax(axis=1).str.removeprefix("body_parts_")
    count = ticked.sum(axis=1)
    return first.where(count == 1, "multiple").where(count > 0, None).astype(object)


@hookimpl
def skinbench_datasets():
    return [Scin]
