"""Fitzpatrick17k clinical atlas images (Groh et al. 2021): 3-, 9- and 114-way diagnosis labels."""
from __future__ import annotations

import pandas as pd
from pydantic import Field
from skinbench.sdk import hookimpl, linked_groups, Task

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

DECLARED_CLASSES = {
    "three_partition_label": ["non-neoplastic", "benign", "malignant"],
    "nine_partition_label": ["inflammatory", "malignant epidermal", "genodermatoses", "benign dermal",
                             "benign epidermal", "malignant melanoma", "benign melanocyte",
                             "malignant cutaneous lymphoma", "malignant dermal"],
}
LABEL_COLUMNS = (*DECLARED_CLASSES, "label")  # 'label' = the 114 fine-grained conditions
SKIN_TONE_COLUMNS = ("fitzpatrick_scale", "fitzpatrick_centaur")


class Fitzpatrick17k(FileDataset):
    """Fitzpatrick17k: one task per label column; groups join rows sharing md5hash, url or image bytes."""

    name = "fitzpatrick17k"
    class Params(FileParams):
        csv: str = "fitzpatrick17k.csv"
        images_dir: str = "images"
        """Files named <md5hash> with any extension (.jpg from most download scripts)."""
        tasks: list[str] = Field(default_factory=lambda: ["three_partition_label", "nine_partition_label"], min_length=1)
        skin_tone: str = "fitzpatrick_scale"
        exclude_qc: list[str] = Field(default_factory=lambda: ["3 Wrongly labelled"])

    meta = {
        "license": "CC BY-NC-SA 3.0",
        "citation": "Groh M, Harris C, Soenksen L, et al. Evaluating deep neural networks trained on clinical images "
                    "in dermatology with the Fitzpatrick 17k dataset. CVPR Workshops 2021.",
        "url": "https://github.com/mattgroh/fitzpatrick17k",
        "source": ["Fitzpatrick17k"],
        "notes": "No patient, case or lesion id exists. Group = connected rows sharing md5hash, source url or "
                 "identical image bytes; near-duplicates that differ in bytes (resized copies) are not joined. "
                 "Rows whose qc is listed in exclude_qc are left out and counted.",
    }

    def tasks(self) -> list[Task]:
        names = self.chosen("tasks", LABEL_COLUMNS)
        skin_tone = self.choice("skin_tone", SKIN_TONE_COLUMNS)
        root = self.root_dir()
        path = root / self.config["csv"]
        problems = Problems()
        table = read_csv(path, problems, "set params.csv to fitzpatrick17k.csv from github.com/mattgroh/fitzpatrick17k")
        if table is None or not has_columns(table, ["md5hash", "url", "qc", skin_tone, *names], path, problems):
            problems.raise_if_any()
        excluded_qc = table["qc"].isin(self.config["exclude_qc"])
        table = table[~excluded_qc]
        images = index_images_by_stem([root / self.config["images_dir"]])
        samples = pd.DataFrame({
            "image": [str(images.get(h, root / self.config["images_dir"] / f"{h}.jpg")) for h in table["md5hash"]],
            "group": linked_groups(table["md5hash"], table["url"]),
            "skin_tone": optional_text(table, skin_tone, ("", "-1")),
            "origin": row_origins(path, table, "md5hash"),
        })
        excluded = {"rows with qc in exclude_qc": int(excluded_qc.sum())}
        tasks = [self._task(name, table, samples, excluded, problems) for name in names]
        problems.raise_if_any()
        return tasks

    def _task(self, name: str, table: pd.DataFrame, samples: pd.DataFrame, excluded: dict[str, int],
              problems: Problems) -> Task:
        labelled = table[name] != ""
        return self.assemble(name, self._classes(name, table), samples[labelled].assign(label=table[name][labelled]),
                             problems, excluded={**excluded, f"rows with an empty {name}": _origins(samples, ~labelled)},
                             description=f"Fitzpatrick17k {name}. {self.meta.notes}")

    @staticmethod
    def _classes(name: str, table: pd.DataFrame) -> list[str]:
        """Declared class order for the partitions; the 114 conditions in alphabetical order."""
        return DECLARED_CLASSES.get(name) or sorted(set(table[name]) - {""})


@hookimpl
def skinbench_datasets():
    return [Fitzpatrick17k]


def _origins(samples: pd.DataFrame, rows: pd.Series) -> list[str] | int:
    """Where the selected rows came from, or only how many when the samples carry no origin."""
    return samples.loc[rows, "origin"].astype(str).tolist() if "origin" in samples else int(rows.sum())
