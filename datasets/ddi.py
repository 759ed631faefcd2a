"""Stanford Diverse Dermatology Images (Daneshjou et al. 2022): malignant versus benign across skin tones."""
from __future__ import annotations

import pandas as pd
from skinbench.sdk import hookimpl, Task

from ._common import (
    FileDataset,
    FileParams,
    Problems,
    has_columns,
    optional_text,
    read_csv,
    row_origins,
)

LEGACY_MALIGNANCY = "malignancy(malig=1)"  # older CSV releases; the official loader converts it
MALIGNANCY_VALUES = {"true": "malignant", "1": "malignant", "false": "benign", "0": "benign"}


class Ddi(FileDataset):
    """DDI: malignant vs benign, skin tone (Fitzpatrick 12 / 34 / 56) as metadata."""

    name = "ddi"
    class Params(FileParams):
        csv: str = "ddi_metadata.csv"
        images_dir: str = "images"
        """The official loader expects DDI/images/<DDI_file> next to DDI/ddi_metadata.csv."""

    meta = {
        "license": "Stanford University Dataset Research Use Agreement (Stanford AIMI)",
        "citation": "Daneshjou R, Vodrahalli K, Novoa RA, et al. Disparities in dermatology AI performance on a "
                    "diverse, curated clinical image set. Science Advances 8(32), eabq6147 (2022).",
        "url": "https://ddi-dataset.github.io/",
        "source": ["DDI"],
        "notes": "The CSV has no patient id, so the group is DDI_ID (one image) joined across identical image "
                 "files; two photos of one patient may still fall on both sides of a split.",
    }

    def tasks(self) -> list[Task]:
        root = self.root_dir()
        path = root / self.config["csv"]
        problems = Problems()
        table = read_csv(path, problems, "set params.csv to the DDI metadata CSV from Stanford AIMI")
        legacy = table is not None and LEGACY_MALIGNANCY in table.columns and "malignant" not in table.columns
        malignancy = LEGACY_MALIGNANCY if legacy else "malignant"
        if table is None or not has_columns(table, ["DDI_file", "skin_tone", malignancy], path, problems):
            problems.raise_if_any()
        group = table["DDI_ID"] if "DDI_ID" in table.columns else table["DDI_file"]
        # An unrecognised value stays as it is, so the label check names the row.
        label = table[malignancy].map(lambda v: MALIGNANCY_VALUES.get(v.strip().lower(), v))
        samples = pd.DataFrame({
            "image": [str(root / self.config["images_dir"] / f) for f in table["DDI_file"]],
            "label": label,
            "group": group,
            "skin_tone": optional_text(table, "skin_tone"),
            "origin": row_origins(path, table, "DDI_file"),
        })
        task = self.assemble("malignant", ["benign", "malignant"], samples, problems,
                             description=f"DDI malignant versus benign. {self.meta.notes}")
        problems.raise_if_any()
        return [task]


@hookimpl
def skinbench_datasets():
    return [Ddi]
