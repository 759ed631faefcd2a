"""Public dataset plugins, loaded through the plugin registry from fixtures in each dataset's real format."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import dataset_fixtures as fx
from skinbench.api import ConfigError, DataError
from skinbench.configuration.registry import load_catalogue


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(autoload=False)


def load(catalogue, name: str, **params):
    return {t.name: t for t in catalogue.create("dataset", name, params).tasks()}


def group_of(task, image_name: str) -> str:
    return task.samples.loc[task.samples["image"].map(lambda p: Path(p).name) == image_name, "group"].iloc[0]


def scin_image(case: str, slot: int) -> str:
    return f"{int(fx.SCIN_CASE_IDS[case]) + 7919 * slot}.png"


def test_registry_offers_every_public_dataset(catalogue):
    assert {"scin", "eczema", "ham10000", "fitzpatrick17k", "ddi", "generic-csv"} <= set(catalogue.names("dataset"))


# --- SCIN -------------------------------------------------------------------------------------

def test_scin_condition_keeps_top_k_and_counts_what_it_leaves_out(catalogue, tmp_path):
    task = load(catalogue, "scin", root=str(fx.write_scin(tmp_path)), top_k=2)["condition"]
    assert task.classes == ["Eczema", "Psoriasis"]
    assert len(task.samples) == 7  # 2 + 1 + 3 + 1 images of the four kept cases
    assert task.samples["label"].value_counts().to_dict() == {"Psoriasis": 4, "Eczema": 3}
    assert "1 cases not gradable for skin condition" in task.description
    assert "1 gradable cases without a condition label" in task.description
    assert "2 cases whose condition is outside the top 2" in task.description


def test_scin_groups_join_cases_sharing_an_image_file_and_keep_long_ids_exact(catalogue, tmp_path):
    """The core joins cases that list the same image file (the preflight does this for every dataset plugin)."""
    from skinbench.data.preflight import join_identical_images

    plugin = catalogue.create("dataset", "scin", {"root": str(fx.write_scin(tmp_path)), "top_k": 2})
    tasks = plugin.tasks()
    tasks, _, warnings = join_identical_images(tasks, plugin.split_table(tasks), "scin")
    task = {t.name: t for t in tasks}["condition"]
    assert len(warnings) == 1 and "identical image bytes" in warnings[0]
    shared = group_of(task, scin_image("eczema_shares_image", 1))
    assert group_of(task, scin_image("psoriasis_three_images", 3)) == shared
    # The two ids differ only in the last digit: read as floats they would collapse into one group.
    assert group_of(task, scin_image("eczema_two_images", 1)) == fx.SCIN_CASE_IDS["eczema_two_images"] != shared
    assert task.samples["group"].nunique() == 3


def test_scin_rare_conditions_as_other_and_ties_broken_alphabetically(catalogue, tmp_path):
    root = str(fx.write_scin(tmp_path))
    other = load(catalogue, "scin", root=root, top_k=2, rare_conditions="other")["condition"]
    assert other.classes == ["Eczema", "Psoriasis", "other"]
    assert other.samples["label"].eq("other").sum() == 2
    everything = load(catalogue, "scin", root=root)["condition"]
    assert group_of(everything, scin_image("tie_rare", 1)) == fx.SCIN_CASE_IDS["tie_rare"]
    tie = everything.samples[everything.samples["group"] == fx.SCIN_CASE_IDS["tie_rare"]]
    assert tie["label"].tolist() == ["Allergic Contact Dermatitis"]


def test_scin_skin_tone_tasks_and_metadata(catalogue, tmp_path):
    tasks = load(catalogue, "scin", root=str(fx.write_scin(tmp_path)), tasks=["monk_us", "fitzpatrick"])
    monk = tasks["monk_us"]
    assert monk.ordinal and monk.classes == ["2", "3", "4", "5", "7"]  # '3.0' read as '3'; empty scale values named
    assert "['1', '6', '8', '9', '10']" in monk.description
    assert "2 cases without monk_skin_tone_label_us" in monk.description
    samples = monk.samples.set_index(monk.samples["image"].map(lambda p: Path(p).name))
    assert samples.at[scin_image("eczema_shares_image", 1), "region"] == "multiple"
    assert samples.at[scin_image("eczema_two_images", 2), "region"] == "arm"
    assert samples.at[scin_image("eczema_two_images", 2), "sex"] == "MALE"
    assert tasks["fitzpatrick"].classes == ["FST1", "FST2", "FST3", "FST4", "FST5"]
    assert set(monk.samples.columns) >= {"image", "label", "group", "region", "skin_tone", "sex", "age"}


# --- HAM10000 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dataverse", [False, True], ids=["kaggle-csv", "dataverse-no-extension"])
def test_ham10000_tasks_group_by_lesion(catalogue, tmp_path, dataverse):
    tasks = load(catalogue, "ham10000", root=str(fx.write_ham10000(tmp_path, dataverse=dataverse)))
    dx, melanoma = tasks["dx"], tasks["melanoma"]
    assert dx.classes == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    assert len(dx.samples) == 12 and dx.samples["group"].nunique() == 9
    lesion = dx.samples[dx.samples["group"] == "HAM_0000118"]
    assert len(lesion) == 2 and set(lesion["label"]) == {"bkl"}
    assert melanoma.classes == ["other", "melanoma"]
    assert melanoma.samples["label"].value_counts().to_dict() == {"other": 9, "melanoma": 3}
    df = dx.samples[dx.samples["label"] == "df"].iloc[0]
    assert pd.isna(df["sex"]) and pd.isna(df["age"])  # 'unknown' and empty cells are unknown, not categories
    assert dx.samples["age"].max() == 80.0


# --- Fitzpatrick17k ---------------------------------------------------------------------------

def test_fitzpatrick17k_partitions_groups_and_qc(catalogue, tmp_path):
    tasks = load(catalogue, "fitzpatrick17k", root=str(fx.write_fitzpatrick17k(tmp_path)))
    three, nine = tasks["three_partition_label"], tasks["nine_partition_label"]
    assert three.classes == ["non-neoplastic", "benign", "malignant"] and len(nine.classes) == 9
    assert len(three.samples) == 10  # 11 rows less the 'Wrongly labelled' one
    assert "1 rows with qc in exclude_qc" in three.description
    same_url = [f"{fx.fitzpatrick_hash(0)}.jpg", f"{fx.fitzpatrick_hash(9)}.jpg"]
    assert group_of(three, same_url[0]) == group_of(three, same_url[1])
    assert three.samples["group"].nunique() == 9
    assert three.samples["skin_tone"].isna().sum() == 1  # fitzpatrick_scale -1 means unknown


def test_fitzpatrick17k_fine_labels_and_centaur_tone(catalogue, tmp_path):
    task = load(catalogue, "fitzpatrick17k", root=str(fx.write_fitzpatrick17k(tmp_path)), tasks=["label"],
                skin_tone="fitzpatrick_centaur", exclude_qc=[])["label"]
    assert len(task.samples) == 11 and task.classes == sorted(task.classes) and len(task.classes) == 9
    assert task.samples["skin_tone"].isna().sum() == 2


# --- DDI --------------------------------------------------------------------------------------

@pytest.mark.parametrize("legacy", [False, True], ids=["malignant", "malignancy(malig=1)"])
def test_ddi_malignancy_and_skin_tone(catalogue, tmp_path, legacy):
    task = load(catalogue, "ddi", root=str(fx.write_ddi(tmp_path, legacy=legacy)))["malignant"]
    assert task.classes == ["benign", "malignant"]
    assert task.samples["label"].tolist() == ["malignant", "benign"] * 3
    assert task.samples["skin_tone"].tolist() == ["12", "12", "34", "34", "56", "56"]
    assert task.samples["group"].tolist() == ["1", "2", "3", "4", "5", "6"]


# --- eczema and generic CSV -------------------------------------------------------------------

def test_eczema_severity_is_ordinal_with_words_and_digits(catalogue, tmp_path):
    task = load(catalogue, "eczema", root=str(fx.write_eczema(tmp_path)))["severity"]
    assert task.classes == [0, 1, 2, 3] and task.ordinal
    assert task.samples["label"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 2]
    assert task.samples.groupby("group").size().to_dict() == {"S01": 2, "S02": 2, "S03": 2, "S04": 1, "S05": 2}
    assert "1 rows with no severity" in task.description
    assert task.samples["age"].dtype.kind in "iuf" and task.samples["skin_tone"].iloc[0] == "2"


def test_generic_csv_several_label_columns_with_maps_and_metadata(catalogue, tmp_path):
    fx.write_eczema(tmp_path)
    table = pd.read_csv(tmp_path / "eczema.csv", dtype=str, keep_default_na=False)
    table = table.rename(columns={"image": "path", "subject_id": "patient", "region": "body_site"})
    table["diagnosis"] = ["AD", "AD", "contact", "AD", "contact", "AD", "AD", "contact", "AD", "AD"]
    table["grade"] = ["-1", "0", "1", "10", "2", "-1", "0", "1", "2", "10"]
    csv = tmp_path / "mine.csv"
    table.to_csv(csv, index=False)
    tasks = load(catalogue, "generic-csv", csv=str(csv), image_column="path", group_column="patient",
                 label_columns=["diagnosis", "grade"], label_map={"diagnosis": {"AD": "atopic dermatitis"}},
                 ordinal=["grade"], metadata_columns={"region": "body_site"})
    diagnosis, grade = tasks["diagnosis"], tasks["grade"]
    assert diagnosis.classes == ["atopic dermatitis", "contact"] and not diagnosis.ordinal
    assert grade.classes == ["-1", "0", "1", "2", "10"] and grade.ordinal  # numeric order, not text order
    assert len(diagnosis.samples) == 10 and diagnosis.samples["group"].nunique() == 5
    assert diagnosis.samples["region"].iloc[0] == "antecubital fossa"
    assert Path(diagnosis.samples["image"].iloc[0]).is_file()  # relative to the CSV's folder


def test_generic_csv_needs_a_csv_and_rejects_unknown_params(catalogue):
    with pytest.raises(ConfigError, match="params.csv"):
        catalogue.create("dataset", "generic-csv", {}).tasks()
    with pytest.raises(ConfigError, match="label_column.*known"):
        catalogue.create("dataset", "generic-csv", {"label_column": "x"})


# --- bad input: every message names the file and the row ----------------------------------------

def edit_csv(path: Path, edit) -> None:
    """Rewrite a fixture CSV with ``edit(table) -> table`` applied."""
    edit(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)


# dataset, fixture writer, params, metadata CSV, label column, a bad label, column to drop
BAD_INPUT_CASES = [
    ("scin", fx.write_scin, {"tasks": ["condition", "fitzpatrick"]}, "dataset/scin_labels.csv",
     "dermatologist_fitzpatrick_skin_type_label_1", "FST9", "weighted_skin_condition_label"),
    ("ham10000", fx.write_ham10000, {}, "HAM10000_metadata.csv", "dx", "melanoma", "lesion_id"),
    ("fitzpatrick17k", fx.write_fitzpatrick17k, {}, "fitzpatrick17k.csv", "three_partition_label", "cancer",
     "md5hash"),
    ("ddi", fx.write_ddi, {}, "ddi_metadata.csv", "malignant", "maybe", "DDI_file"),
    ("eczema", fx.write_eczema, {}, "eczema.csv", "severity", "4", "subject_id"),
]
IDS = [case[0] for case in BAD_INPUT_CASES]


@pytest.mark.parametrize("name,write,params,csv,label_column,bad_label,column", BAD_INPUT_CASES, ids=IDS)
def test_missing_column_is_named_with_the_present_ones(catalogue, tmp_path, name, write, params, csv, label_column,
                                                       bad_label, column):
    edit_csv(write(tmp_path) / csv, lambda t: t.drop(columns=column))
    with pytest.raises(DataError) as caught:
        load(catalogue, name, root=str(tmp_path), **params)
    message = str(caught.value)
    assert f"{Path(csv).name}: missing column(s) {column}; present columns: " in message
    assert label_column in message.split("present columns:")[1]


@pytest.mark.parametrize("name,write,params,csv,label_column,bad_label,column", BAD_INPUT_CASES, ids=IDS)
def test_unknown_label_names_file_and_line(catalogue, tmp_path, name, write, params, csv, label_column, bad_label,
                                           column):
    edit_csv(write(tmp_path) / csv, lambda t: t.assign(**{label_column: t[label_column].where(t.index != 2, bad_label)}))
    with pytest.raises(DataError) as caught:
        load(catalogue, name, root=str(tmp_path), **params)
    wrong = [p for p in caught.value.problems if repr(bad_label) in p]
    assert len(wrong) == 1 and re.search(rf"{re.escape(Path(csv).name)} line 4\b", wrong[0]), caught.value.problems


@pytest.mark.parametrize("name,write,params,csv,label_column,bad_label,column", BAD_INPUT_CASES, ids=IDS)
def test_missing_image_names_file_line_and_image_and_can_be_skipped(catalogue, tmp_path, name, write, params, csv,
                                                                   label_column, bad_label, column):
    root = write(tmp_path)
    complete = {n: len(t.samples) for n, t in load(catalogue, name, root=str(root), **params).items()}
    first_task = next(iter(load(catalogue, name, root=str(root), **params).values()))
    victim = Path(first_task.samples["image"].iloc[0])
    victim.unlink()
    with pytest.raises(DataError) as caught:
        load(catalogue, name, root=str(root), **params)
    missing = [p for p in caught.value.problems if "image file not found" in p]
    assert len(missing) == 1 and victim.name in missing[0] and re.search(r"\.csv line \d+", missing[0])
    skipped = load(catalogue, name, root=str(root), missing_images="skip", **params)
    assert len(next(iter(skipped.values())).samples) == next(iter(complete.values())) - 1
    assert "1 image file missing" in next(iter(skipped.values())).description


def test_all_problems_are_reported_together(catalogue, tmp_path):
    root = fx.write_ham10000(tmp_path)
    edit_csv(root / "HAM10000_metadata.csv", lambda t: t.assign(dx=t["dx"].replace({"vasc": "angioma"})))
    (root / "HAM10000_images_part_1" / "ISIC_0024307.jpg").unlink()
    with pytest.raises(DataError) as caught:
        load(catalogue, "ham10000", root=str(root), tasks=["dx"])
    problems = caught.value.problems
    assert any("ISIC_0024307.jpg" in p and "line 3" in p for p in problems)
    assert any("'angioma'" in p and "line 13" in p for p in problems)
    assert any("class 'vasc' has no samples" in p for p in problems)


def test_malformed_scin_weighted_label_names_the_labels_file(catalogue, tmp_path):
    root = fx.write_scin(tmp_path)
    labels = root / "dataset" / "scin_labels.csv"
    edit_csv(labels, lambda t: t.assign(weighted_skin_condition_label=t["weighted_skin_condition_label"]
                                        .where(t.index != 0, "Eczema: 0.7")))
    with pytest.raises(DataError, match=r"scin_labels\.csv line 2 \(case_id 6611342809521127009\).*not a dict"):
        load(catalogue, "scin", root=str(root))


def test_wrong_root_and_unknown_task_are_config_errors(catalogue, tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        load(catalogue, "ddi", root=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="tasks must list"):
        load(catalogue, "ham10000", root=str(tmp_path), tasks=["diagnosis"])
