"""What every file-backed dataset plugin shares: reading CSVs, collecting problems, assembling tasks.

Not a plugin itself (the leading underscore keeps the registry from loading it). Plugins
collect every problem they find in a :class:`Problems` and raise one
:class:`~skinbench.api.DataError` at the end, so a user fixes a dataset in one pass.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import pandas as pd
from skinbench.sdk import ConfigError, DataError, Dataset, PluginParams, Task

logger = logging.getLogger("skinbench.datasets")

MISSING_IMAGE_POLICIES = ("error", "skip")


class FileParams(PluginParams):
    """Parameters every file-backed dataset shares."""

    root: str = ""
    """The dataset folder."""
    missing_images: Literal["error", "skip"] = "error"
    """'error' reports every missing file; 'skip' drops those rows and counts them."""


class Problems:
    """An ordered set of problem messages (one missing image used by two tasks is reported once)."""

    def __init__(self) -> None:
        self._messages: dict[str, None] = {}

    def add(self, message: str) -> None:
        self._messages.setdefault(message)

    def __bool__(self) -> bool:
        return bool(self._messages)

    def raise_if_any(self) -> None:
        if self._messages:
            raise DataError(list(self._messages))


def csv_lines(table: pd.DataFrame) -> pd.Series:
    """1-based line number of each data row, counting the header as line 1 (as editors show it).

    Exact for CSVs without line breaks inside quoted cells, which is true of every dataset here."""
    return pd.Series(np.arange(len(table)) + 2, index=table.index)


def row_origins(path: Path, table: pd.DataFrame, id_column: str | None = None) -> pd.Series:
    """'<file> line N (<id_column> X)' for each row, used to point every problem at its source."""
    origins = f"{path} line " + csv_lines(table).astype(str)
    if id_column and id_column in table.columns:
        origins = origins + f" ({id_column} " + table[id_column] + ")"
    return origins


def read_csv(path: Path, problems: Problems, hint: str) -> pd.DataFrame | None:
    """Read every cell as a string ('' when empty), so long ids keep all their digits.

    Returns None (and records a problem with ``hint`` on how to fix it) when the file is unusable."""
    if not path.is_file():
        problems.add(f"{path}: file not found; {hint}")
        return None
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        problems.add(f"{path}: cannot be read as CSV ({exc.__class__.__name__}: {exc})")
        return None


def has_columns(table: pd.DataFrame, required: Iterable[str], path: Path, problems: Problems) -> bool:
    """Record one problem listing every missing column next to the columns that are present."""
    missing = [c for c in required if c not in table.columns]
    if missing:
        present = ", ".join(table.columns) or "(none)"
        problems.add(f"{path}: missing column(s) {', '.join(missing)}; present columns: {present}")
    return not missing


def duplicated_ids(table: pd.DataFrame, column: str, path: Path, problems: Problems) -> None:
    """Record every row whose id repeats an earlier row's id."""
    lines = csv_lines(table)
    for index in table.index[table[column].duplicated()]:
        problems.add(f"{path} line {lines[index]}: {column} {table.at[index, column]!r} appears more than once; "
                     "keep one row per id")


def index_images_by_stem(folders: Iterable[Path]) -> dict[str, Path]:
    """Map file name without extension to file, so ids resolve whatever extension was downloaded."""
    index: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.is_file():
                    index.setdefault(Path(entry.name).stem, Path(entry.path).resolve())
    return index


class FileDataset(Dataset):
    """Base of the built-in datasets that read a folder: parameter checks and task assembly."""

    Params = FileParams

    def chosen(self, param: str, allowed: Iterable[str]) -> list[str]:
        """The values of a list parameter (e.g. ``tasks``), each checked against ``allowed``."""
        values = list(self.config[param])
        unknown = [v for v in values if v not in allowed]
        if unknown or not values:
            raise ConfigError(f"dataset '{self.name}': {param} must list one or more of {list(allowed)}; "
                              f"got {values}")
        return values

    def choice(self, param: str, allowed: Iterable[str]) -> str:
        """The value of a single-choice parameter, checked against ``allowed``."""
        allowed = list(allowed)
        if self.config[param] not in allowed:
            raise ConfigError(f"dataset '{self.name}': {param} must be one of {allowed}; got {self.config[param]!r}")
        return self.config[param]

    def root_dir(self) -> Path:
        """The dataset folder; an unset or absent folder is a configuration error."""
        root = str(self.config["root"] or "")
        if not root:
            raise ConfigError(f"dataset '{self.name}': set params.root to the folder that holds the dataset")
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"dataset '{self.name}': root {path} is not a folder; "
                              "set params.root to the dataset folder")
        return path

    def assemble(self, task: str, classes: list, samples: pd.DataFrame, problems: Problems, *,
                 excluded: dict[str, int | list[str]] | None = None, ordinal: bool = False, description: str = "",
                 drop_empty_classes: bool = False) -> Task:
        """Check images and labels of one task's rows and build the :class:`Task`.

        ``samples`` holds ``image`` (absolute path), ``label``, ``group``, optional metadata and
        ``origin`` (where each row came from, for messages; ``label_origin`` too where labels
        come from another file). ``excluded`` counts rows dropped by
        documented rules (a count, or the rows' origins where they are known); it is extended here and
        reported in the description, the log and :attr:`Task.left_out`.
        ``drop_empty_classes`` is for fixed scales (skin tone 1-10) where a gap is no error: such
        classes are removed from ``classes`` and named in the description."""
        left_out = {reason: (len(rows), [str(r) for r in rows[:SHOWN_LEFT_OUT]]) if not isinstance(rows, int)
                    else (rows, []) for reason, rows in (excluded or {}).items()}
        excluded = {reason: n for reason, (n, _) in left_out.items()}
        samples = self._checked_images(samples, problems, excluded)
        if drop_empty_classes:
            empty = [c for c in classes if c not in set(samples["label"])]
            classes = [c for c in classes if c not in empty]
            description += f" Scale values without samples, left out of the classes: {empty}." if empty else ""
        self._check_labels(task, classes, samples, problems)
        description += _exclusion_note(excluded)
        if any(excluded.values()):
            logger.info("dataset %s, task %s:%s", self.name, task, _exclusion_note(excluded))
        origins = samples["origin"].astype(str).tolist() if "origin" in samples else None
        samples = samples.drop(columns=["origin", "label_origin"], errors="ignore").reset_index(drop=True)
        left_out = {reason: left_out.get(reason, (n, [])) for reason, n in excluded.items() if n}
        return Task(dataset=self.name, name=task, classes=list(classes), samples=samples,
                    ordinal=ordinal, description=description.strip(), origins=origins, left_out=left_out)

    def _checked_images(self, samples: pd.DataFrame, problems: Problems, excluded: dict[str, int]) -> pd.DataFrame:
        present = samples["image"].map(os.path.isfile)
        if self.config["missing_images"] == "skip":
            excluded["image file missing"] = excluded.get("image file missing", 0) + int((~present).sum())
            return samples[present]
        for origin, image in zip(samples["origin"][~present], samples["image"][~present]):
            problems.add(f"{origin}: image file not found: {image}; download it, fix the path, "
                         "or set missing_images: skip to leave such rows out")
        return samples

    def _check_labels(self, task: str, classes: list, samples: pd.DataFrame, problems: Problems) -> None:
        known = samples["label"].isin(classes)
        origins = samples["label_origin"] if "label_origin" in samples else samples["origin"]
        for origin, label in zip(origins[~known], samples["label"][~known]):
            problems.add(f"{origin}: label {label!r} of task '{task}' is not one of the classes "
                         f"{classes}; correct the value or the declared classes")
        if samples.empty:
            problems.add(f"dataset '{self.name}', task '{task}': no samples left after filtering; "
                         "check the files and the parameters")
            return
        counts = samples["label"].value_counts()
        for cls in classes:
            if counts.get(cls, 0) == 0:
                problems.add(f"dataset '{self.name}', task '{task}': class {cls!r} has no samples; "
                             "remove it from the classes or add images of it")


SHOWN_LEFT_OUT = 5
"""Rows named per reason when a task reports the rows it left out."""


def _exclusion_note(excluded: dict[str, int]) -> str:
    parts = [f"{n} {reason}" for reason, n in excluded.items() if n]
    return f" Rows left out: {'; '.join(parts)}." if parts else ""


def optional_text(table: pd.DataFrame, column: str, missing: Iterable[str] = ("",)) -> pd.Series:
    """A metadata column as strings with unknowns as None (None rows drop out of subgroup tables);
    all None where the dataset copy lacks the column."""
    if column not in table.columns:
        return pd.Series(None, index=table.index, dtype=object)
    missing = set(missing)
    return table[column].map(lambda v: None if v.strip() in missing else v.strip()).astype(object)
