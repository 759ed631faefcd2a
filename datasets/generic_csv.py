"""Any CSV of image paths, labels and patient ids: the way to benchmark your own images."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field, field_validator
from skinbench.sdk import ConfigError, hookimpl, Task

from ._common import (
    FileDataset,
    FileParams,
    Problems,
    has_columns,
    optional_text,
    read_csv,
    row_origins,
)

METADATA_NAMES = ("region", "skin_tone", "sex", "age")


class GenericCsv(FileDataset):
    """A CSV with one row per image: image path, patient id and one or more label columns (one task each)."""

    name = "generic-csv"
    class Params(FileParams):
        csv: str = ""
        """The CSV file; a relative path is taken from root (or the working directory when root is '')."""
        image_column: str = "image"
        """A relative image path is taken from root (or the CSV's folder when root is '')."""
        group_column: str = "patient_id"
        label_columns: list[str] = Field(default_factory=lambda: ["label"], min_length=1)
        classes: dict[str, list[Any]] = Field(default_factory=dict)
        """Label column -> class order; default: the values found, sorted (numerically if numbers)."""
        label_map: dict[str, dict[str, Any]] = Field(default_factory=dict)
        """Label column -> {value in the CSV: label}; values not listed stay as they are."""
        ordinal: bool | list[str] = False
        """True: every label column is ordinal; or a list of the ordinal label columns."""
        metadata_columns: dict[str, str] = Field(default_factory=dict)
        """region / skin_tone / sex / age -> CSV column; same-named columns are used anyway."""
        missing_labels: list[str] = Field(default_factory=lambda: [""])
        """Values meaning 'not labelled': such rows are left out of that task and counted."""

        @field_validator("label_map", mode="before")
        @classmethod
        def _text_keys(cls, value: Any) -> Any:
            """YAML reads ``0: clear`` with an integer key; the CSV holds text."""
            if isinstance(value, dict):
                return {k: ({str(a): b for a, b in v.items()} if isinstance(v, dict) else v) for k, v in value.items()}
            return value

    meta = {
        "license": "as the user's data",
        "citation": "",
        "url": "",
        "notes": "Group = group_column (the patient id). Put every image of one person under one id: the "
                 "runner keeps each id on one side of every split.",
    }

    def tasks(self) -> list[Task]:
        path, base = self._locations()
        problems = Problems()
        table = read_csv(path, problems, "set params.csv to your CSV file")
        metadata = self._metadata_columns(table)
        image_column, group_column = self.config["image_column"], self.config["group_column"]
        required = [image_column, group_column, *self.config["label_columns"], *metadata.values()]
        if table is None or not has_columns(table, required, path, problems):
            problems.raise_if_any()
        origins = row_origins(path, table)
        for origin in origins[table[group_column].str.strip() == ""]:
            problems.add(f"{origin}: empty {group_column}; every image needs the id of its patient")
        extra = {name: optional_text(table, column) for name, column in metadata.items()}
        if "age" in extra:
            extra["age"] = _ages(extra["age"])
        samples = pd.DataFrame({
            "image": [str((base / p).resolve()) for p in table[image_column]],
            "group": table[group_column].str.strip(),
            **extra,
            **({"split": table["split"].str.strip()} if "split" in table else {}),  # for protocol.split_column
            "origin": origins,
        })
        tasks = [self._task(column, path, table[column], samples, problems) for column in self.config["label_columns"]]
        problems.raise_if_any()
        return tasks

    def _locations(self) -> tuple[Path, Path]:
        """The CSV file and the folder that relative image paths are taken from."""
        if not self.config["csv"]:
            raise ConfigError(f"dataset '{self.name}': set params.csv to the CSV file of images and labels")
        root = Path(str(self.config["root"] or "")).expanduser()
        path = (root / Path(self.config["csv"]).expanduser()).resolve()
        return path, (root.resolve() if str(self.config["root"] or "") else path.parent)

    def _metadata_columns(self, table: pd.DataFrame | None) -> dict[str, str]:
        mapping = dict(self.config["metadata_columns"])
        unknown = sorted(set(mapping) - set(METADATA_NAMES))
        if unknown:
            raise ConfigError(f"dataset '{self.name}': metadata_columns keys {unknown} are not among "
                              f"{list(METADATA_NAMES)}")
        present = table.columns if table is not None else []
        return {**{name: name for name in METADATA_NAMES if name in present}, **mapping}

    def _task(self, column: str, path: Path, raw: pd.Series, samples: pd.DataFrame, problems: Problems) -> Task:
        labelled = ~raw.str.strip().isin([str(v) for v in self.config["missing_labels"]])
        labels = self._labels(column, raw[labelled].str.strip())
        return self.assemble(
            column, self._classes(column, labels), samples[labelled].assign(label=labels, stratum=raw[labelled].str.strip()),
            problems,
            excluded={f"rows with no {column}": samples.loc[~labelled, "origin"].astype(str).tolist()},
            ordinal=self._is_ordinal(column),
            description=f"{column} from {path.name}. {self.meta.notes}")

    def _labels(self, column: str, raw: pd.Series) -> pd.Series:
        """Apply label_map, then spell each value as its declared class (so YAML 0 matches CSV '0')."""
        mapping = {str(k): v for k, v in self.config["label_map"].get(column, {}).items()}
        declared = {str(c): c for c in self.config["classes"].get(column, [])}
        return raw.map(lambda v: mapping.get(v, v)).map(lambda v: declared.get(str(v), v)).astype(object)

    def _classes(self, column: str, labels: pd.Series) -> list[Any]:
        if column in self.config["classes"]:
            return list(self.config["classes"][column])
        return sorted(set(labels), key=_natural_key)

    def _is_ordinal(self, column: str) -> bool:
        ordinal = self.config["ordinal"]
        return column in ordinal if isinstance(ordinal, (list, tuple)) else bool(ordinal)


def _natural_key(value: Any) -> tuple:
    """Numbers in numeric order before text, so classes '-1', '0', '2', '10' keep their scale order."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def _ages(text: pd.Series) -> pd.Series:
    """Ages as numbers when every filled cell is a number (years), else as text (age groups)."""
    numbers = pd.to_numeric(text, errors="coerce")
    return numbers if numbers.notna().sum() == text.notna().sum() and text.notna().any() else text


@hookimpl
def skinbench_datasets():
    return [GenericCsv]
