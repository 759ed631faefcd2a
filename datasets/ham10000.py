"""HAM10000 dermoscopic images (Tschandl et al. 2018): 7 diagnoses, grouped by lesion."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import Field
from skinbench.sdk import hookimpl, Task

from ._common import (
    FileDataset,
    FileParams,
    Problems,
    has_columns,
    index_images_by_stem,
    optional_text,
    read_csv,
    row_origins,
)

DIAGNOSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
METADATA_NAMES = ("HAM10000_metadata.csv", "HAM10000_metadata")  # Kaggle copy / Harvard Dataverse copy
TASKS = ("dx", "melanoma")
REQUIRED = ("lesion_id", "image_id", "dx")


class Ham10000(FileDataset):
    """HAM10000: dx (7 classes) and melanoma-vs-rest, one group per lesion_id."""

    name = "ham10000"
    class Params(FileParams):
        metadata: str = ""
        """'' = HAM10000_metadata.csv or HAM10000_metadata, whichever exists in root."""
        image_dirs: list[str] = Field(default_factory=lambda: ["HAM10000_images_part_1", "HAM10000_images_part_2"])
        tasks: list[str] = Field(default_factory=lambda: list(TASKS), min_length=1)

    meta = {
        "license": "CC BY-NC 4.0",
        "citation": "Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection of multi-source "
                    "dermatoscopic images of common pigmented skin lesions. Sci Data 5, 180161 (2018).",
        "url": "https://doi.org/10.7910/DVN/DBW86T",
        "source": ["HAM10000"],
        "notes": "Group = lesion_id. No patient id is released, so two lesions of one patient can still fall "
                 "on both sides of a split. Images are <image_id>.jpg in the two part folders.",
    }

    def tasks(self) -> list[Task]:
        names = self.chosen("tasks", TASKS)
        root = self.root_dir()
        problems = Problems()
        path = self._metadata_path(root)
        table = read_csv(path, problems, "set params.metadata to the HAM10000 metadata CSV")
        if table is None or not has_columns(table, REQUIRED, path, problems):
            problems.raise_if_any()
        samples = self._samples(root, path, table)
        tasks = [self._task(name, samples, problems) for name in names]
        problems.raise_if_any()
        return tasks

    def _metadata_path(self, root: Path) -> Path:
        if self.config["metadata"]:
            return root / self.config["metadata"]
        return next((root / n for n in METADATA_NAMES if (root / n).is_file()), root / METADATA_NAMES[0])

    def _samples(self, root: Path, path: Path, table: pd.DataFrame) -> pd.DataFrame:
        folders = [root / d for d in self.config["image_dirs"]]
        images = index_images_by_stem(folders)
        # Where a missing image was looked for, in shell brace notation when there are several folders.
        dirs = list(self.config["image_dirs"])
        searched = root / (dirs[0] if len(dirs) == 1 else "{" + ",".join(dirs) + "}")
        return pd.DataFrame({
            "image": [str(images.get(i, searched / f"{i}.jpg")) for i in table["image_id"]],
            "dx": table["dx"],
            "group": table["lesion_id"],
            "region": optional_text(table, "localization", ("", "unknown")),
            "sex": optional_text(table, "sex", ("", "unknown")),
            "age": pd.to_numeric(table.get("age", pd.Series("", index=table.index)), errors="coerce"),
            "origin": row_origins(path, table, "image_id"),
        })

    def _task(self, name: str, samples: pd.DataFrame, problems: Problems) -> Task:
        if name == "dx":
            return self.assemble("dx", DIAGNOSES, samples.rename(columns={"dx": "label"}), problems,
                                 description="HAM10000 diagnosis (dx). Group = lesion_id (no patient id exists).")
        # An unknown dx stays as it is, so the label check reports it here too.
        label = samples["dx"].map(lambda dx: "melanoma" if dx == "mel" else "other" if dx in DIAGNOSES else dx)
        return self.assemble("melanoma", ["other", "melanoma"], samples.drop(columns="dx").assign(label=label),
                             problems, description="HAM10000 melanoma (dx = mel) versus every other diagnosis. "
                                                   "Group = lesion_id (no patient id exists).")


@hookimpl
def skinbench_datasets():
    return [Ham10000]
