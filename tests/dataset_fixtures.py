"""Tiny copies of public skin datasets in their exact on-disk formats (see /work/shared/FORMATS.md §1, §2, §8).

Each ``write_*`` function writes file names, CSV columns, value encodings and known quirks as
the real release has them, with a handful of rows and 8x8 images, and returns the root
folder to pass as the plugin's ``root``. The module-level constants name the rows that
tests make claims about.
"""
from __future__ import annotations

import ast
import csv
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, seed: int) -> Path:
    """An 8x8 noise image whose bytes differ for every seed (PNG or JPEG by the file suffix)."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    """Rows as dicts; unset columns stay empty, as in the real files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- SCIN (FORMATS §1) -------------------------------------------------------------------------

_RACES = ["american_indian_or_alaska_native", "asian", "black_or_african_american",
          "hispanic_latino_or_spanish_origin", "middle_eastern_or_north_african",
          "native_hawaiian_or_pacific_islander", "white", "other_race", "prefer_not_to_answer"]
_TEXTURES = ["raised_or_bumpy", "flat", "rough_or_flaky", "fluid_filled"]
_BODY_PARTS = ["head_or_neck", "arm", "palm", "back_of_hand", "torso_front", "torso_back", "genitalia_or_groin",
               "buttocks", "leg", "foot_top_or_side", "foot_sole", "other"]
_SYMPTOMS = ["bothersome_appearance", "bleeding", "increasing_size", "darkening", "itching", "burning", "pain",
             "no_relevant_experience"]
_OTHER_SYMPTOMS = ["fever", "chills", "fatigue", "joint_pain", "mouth_sores", "shortness_of_breath",
                   "no_relevant_symptoms"]
SCIN_CASES_COLUMNS = [
    "case_id", "source", "release", "year", "age_group", "sex_at_birth", "fitzpatrick_skin_type",
    *[f"race_ethnicity_{r}" for r in _RACES], *[f"textures_{t}" for t in _TEXTURES],
    *[f"body_parts_{b}" for b in _BODY_PARTS], *[f"condition_symptoms_{s}" for s in _SYMPTOMS],
    *[f"other_symptoms_{s}" for s in _OTHER_SYMPTOMS],
    "related_category", "condition_duration", "image_1_path", "image_2_path", "image_3_path",
    "image_1_shot_type", "image_2_shot_type", "image_3_shot_type", "combined_race",
    "race_ethnicity_two_or_more_after_mitigation",
]
SCIN_LABELS_COLUMNS = [
    "case_id", *[f"dermatologist_gradable_for_skin_condition_{i}" for i in (1, 2, 3)],
    "dermatologist_skin_condition_on_label_name", "dermatologist_skin_condition_confidence",
    "weighted_skin_condition_label", *[f"dermatologist_gradable_for_fitzpatrick_skin_type_{i}" for i in (1, 2, 3)],
    *[f"dermatologist_fitzpatrick_skin_type_label_{i}" for i in (1, 2, 3)],
    "gradable_for_monk_skin_tone_india", "gradable_for_monk_skin_tone_us",
    "monk_skin_tone_label_india", "monk_skin_tone_label_us",
]
GRADABLE = "DEFAULT_YES_IMAGE_QUALITY_SUFFICIENT"

# Signed 64-bit ids; the first two differ only in the last digit, so reading them as floats merges them.
SCIN_CASE_IDS = {
    "eczema_two_images": "-1000600354148496558",
    "eczema_shares_image": "-1000600354148496557",
    "psoriasis_three_images": "3445096909671059178",
    "psoriasis_leg": "8021553011296457106",
    "urticaria_rare": "-5013291880125593416",
    "not_gradable": "1250917290311785403",
    "no_condition_label": "-7234001957720418845",
    "tie_rare": "6611342809521127009",
}
# case -> (weighted label, gradable value, number of images, FST label, Monk US label, body parts ticked)
_SCIN_CASES = {
    "eczema_two_images": ("{'Eczema': 0.69, 'Irritant Contact Dermatitis': 0.31}", GRADABLE, 2, "FST2", "3.0", ["arm"]),
    "eczema_shares_image": ("{'Eczema': 1.0}", GRADABLE, 1, "FST3", "4.0", ["arm", "leg"]),
    "psoriasis_three_images": ("{'Psoriasis': 0.75, 'Eczema': 0.25}", GRADABLE, 3, "FST5", "7.0", []),
    "psoriasis_leg": ("{'Psoriasis': 1.0}", GRADABLE, 1, "", "", ["leg"]),
    "urticaria_rare": ("{'Urticaria': 1.0}", GRADABLE, 1, "FST1", "2.0", ["torso_front"]),
    "not_gradable": ("", "WRONG_IMAGE_QUALITY_INSUFFICIENT", 1, "", "", ["palm"]),
    "no_condition_label": ("{}", GRADABLE, 1, "FST4", "5.0", ["foot_sole"]),
    "tie_rare": ("{'Eczema': 0.5, 'Allergic Contact Dermatitis': 0.5}", GRADABLE, 1, "FST2", "3.0", ["arm"]),
}
SHARED_IMAGE_SEED = 999


def write_scin(root: Path) -> Path:
    """``dataset/scin_cases.csv``, ``dataset/scin_labels.csv`` and ``dataset/images/<signed int64>.png``.

    Quirks kept: image paths are bucket-relative, checkboxes are "YES" or empty, the condition
    lists and the weighted label are Python literals, Monk labels are floats ('3.0'), the
    gradable columns are enum strings, and case 'eczema_shares_image' has an image whose bytes
    are identical to the first image of 'psoriasis_three_images' (a duplicate, as the README warns)."""
    cases, labels = [], []
    for n, (key, (weighted, gradable, n_images, fst, monk, parts)) in enumerate(_SCIN_CASES.items()):
        case_id = SCIN_CASE_IDS[key]
        case = {"case_id": case_id, "source": "USER_CONTRIBUTED", "release": "SCIN_v1", "year": "2023",
                "age_group": "AGE_18_TO_29" if n % 2 else "AGE_UNKNOWN", "sex_at_birth": "FEMALE" if n % 2 else "MALE",
                "fitzpatrick_skin_type": "NONE_IDENTIFIED" if n == 3 else f"FST{n % 6 + 1}",
                "race_ethnicity_white": "YES", "textures_flat": "YES", "condition_symptoms_itching": "YES",
                "related_category": "RASH", "condition_duration": "ONE_TO_FOUR_WEEKS", "combined_race": "white",
                **{f"body_parts_{p}": "YES" for p in parts}}
        for slot in range(1, n_images + 1):
            image_id = str(int(case_id) + 7919 * slot)
            seed = SHARED_IMAGE_SEED if (key, slot) in {("eczema_shares_image", 1), ("psoriasis_three_images", 1)} \
                else 10 * n + slot
            relative = f"dataset/images/{image_id}.png"
            write_image(root / relative, seed)
            case[f"image_{slot}_path"] = relative
            case[f"image_{slot}_shot_type"] = ["CLOSE_UP", "AT_AN_ANGLE", "AT_DISTANCE"][slot - 1]
        cases.append(case)
        names = list(ast.literal_eval(weighted)) if weighted else []
        labels.append({
            "case_id": case_id, "dermatologist_gradable_for_skin_condition_1": gradable,
            "dermatologist_gradable_for_skin_condition_2": gradable,
            "dermatologist_skin_condition_on_label_name": repr(names) if names else "",
            "dermatologist_skin_condition_confidence": repr([4] * len(names)) if names else "",
            "weighted_skin_condition_label": weighted,
            "dermatologist_gradable_for_fitzpatrick_skin_type_1": "YES" if fst else "NO",
            "dermatologist_fitzpatrick_skin_type_label_1": fst,
            "gradable_for_monk_skin_tone_india": str(bool(monk)), "gradable_for_monk_skin_tone_us": str(bool(monk)),
            "monk_skin_tone_label_india": monk, "monk_skin_tone_label_us": monk,
        })
    write_csv(root / "dataset" / "scin_cases.csv", SCIN_CASES_COLUMNS, cases)
    write_csv(root / "dataset" / "scin_labels.csv", SCIN_LABELS_COLUMNS, list(reversed(labels)))
    return root


# --- HAM10000 (FORMATS §2) ---------------------------------------------------------------------

HAM_COLUMNS = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]
# lesion_id -> (dx, dx_type, age, sex, localization, number of images)
HAM_LESIONS = {
    "HAM_0000118": ("bkl", "histo", "80.0", "male", "scalp", 2),
    "HAM_0002730": ("bkl", "histo", "80.0", "male", "scalp", 1),
    "HAM_0001466": ("akiec", "histo", "75.0", "male", "ear", 1),
    "HAM_0002761": ("bcc", "histo", "60.0", "female", "face", 2),
    "HAM_0005132": ("df", "consensus", "", "unknown", "lower extremity", 1),
    "HAM_0003521": ("mel", "histo", "55.0", "female", "back", 1),
    "HAM_0000949": ("mel", "histo", "70.0", "male", "trunk", 2),
    "HAM_0007207": ("nv", "follow_up", "45.0", "female", "unknown", 1),
    "HAM_0001726": ("vasc", "consensus", "35.0", "female", "abdomen", 1),
}


def write_ham10000(root: Path, dataverse: bool = False) -> Path:
    """``HAM10000_metadata.csv`` (Kaggle) or ``HAM10000_metadata`` with a ``dataset`` column (Harvard
    Dataverse), and ``ISIC_<7 digits>.jpg`` split over ``HAM10000_images_part_1`` and ``_part_2``."""
    rows, number = [], 24305
    for lesion, (dx, dx_type, age, sex, site, n_images) in HAM_LESIONS.items():
        for _ in range(n_images):
            number += 1
            image_id = f"ISIC_{number:07d}"
            part = 1 if number % 2 else 2
            write_image(root / f"HAM10000_images_part_{part}" / f"{image_id}.jpg", number)
            rows.append({"lesion_id": lesion, "image_id": image_id, "dx": dx, "dx_type": dx_type, "age": age,
                         "sex": sex, "localization": site, "dataset": "vidir_modern"})
    if dataverse:
        write_csv(root / "HAM10000_metadata", [*HAM_COLUMNS, "dataset"], rows)
    else:
        write_csv(root / "HAM10000_metadata.csv", HAM_COLUMNS, [{k: r[k] for k in HAM_COLUMNS} for r in rows])
    return root


# --- Fitzpatrick17k (FORMATS §2) ---------------------------------------------------------------

FITZPATRICK_COLUMNS = ["md5hash", "fitzpatrick_scale", "fitzpatrick_centaur", "label", "nine_partition_label",
                       "three_partition_label", "qc", "url", "url_alphanum"]
_FITZ_LABELS = [  # label, nine_partition_label, three_partition_label
    ("psoriasis", "inflammatory", "non-neoplastic"),
    ("basal cell carcinoma", "malignant epidermal", "malignant"),
    ("neurofibromatosis", "genodermatoses", "non-neoplastic"),
    ("dermatofibroma", "benign dermal", "benign"),
    ("seborrheic keratosis", "benign epidermal", "benign"),
    ("melanoma", "malignant melanoma", "malignant"),
    ("congenital nevus", "benign melanocyte", "benign"),
    ("mycosis fungoides", "malignant cutaneous lymphoma", "malignant"),
    ("kaposi sarcoma", "malignant dermal", "malignant"),
]
DUPLICATE_URL = "https://www.dermaamin.com/site/images/clinical-pic/p/psoriasis/psoriasis2.jpg"


def fitzpatrick_hash(n: int) -> str:
    return f"{n:02d}" + "5e82a45bc5d78bd24c92a37e53f5" + f"{n:02d}"


def write_fitzpatrick17k(root: Path) -> Path:
    """``fitzpatrick17k.csv`` and ``images/<md5hash>.jpg``: 9 labelled rows, one row re-using
    another's url (rows 1 and 10), one with an empty url, one 'Wrongly labelled' qc row, -1 scales."""
    rows = []
    for n, (label, nine, three) in enumerate(_FITZ_LABELS + [_FITZ_LABELS[0], _FITZ_LABELS[3]]):
        site = "dermaamin.com/site/images/clinical-pic" if n % 2 == 0 else "atlasdermatologico.com.br/img"
        url = DUPLICATE_URL if n in (0, 9) else ("" if n == 4 else f"https://www.{site}/{label.replace(' ', '')}{n}.jpg")
        row = {"md5hash": fitzpatrick_hash(n), "fitzpatrick_scale": "-1" if n == 2 else str(n % 6 + 1),
               "fitzpatrick_centaur": "-1" if n in (2, 5) else str((n + 1) % 6 + 1), "label": label,
               "nine_partition_label": nine, "three_partition_label": three,
               "qc": {1: "1 Diagnostic", 10: "3 Wrongly labelled"}.get(n, ""), "url": url,
               "url_alphanum": "".join(ch for ch in url if ch.isalnum())}
        rows.append(row)
        write_image(root / "images" / f"{row['md5hash']}.jpg", 300 + n)
    write_csv(root / "fitzpatrick17k.csv", FITZPATRICK_COLUMNS, rows)
    return root


# --- DDI (FORMATS §2) --------------------------------------------------------------------------

DDI_COLUMNS = ["DDI_ID", "DDI_file", "skin_tone", "malignant", "disease"]
_DDI_ROWS = [  # skin_tone, malignant, disease
    ("12", True, "melanoma-in-situ"), ("12", False, "verruca-vulgaris"), ("34", True, "basal-cell-carcinoma"),
    ("34", False, "seborrheic-keratosis"), ("56", True, "squamous-cell-carcinoma-in-situ"),
    ("56", False, "epidermal-cyst"),
]


def write_ddi(root: Path, legacy: bool = False) -> Path:
    """``ddi_metadata.csv`` and ``images/<6-digit>.png``, as the official DDI loader expects.
    ``malignant`` is 'True'/'False'; ``legacy`` writes the older ``malignancy(malig=1)`` as 1/0."""
    malignancy = "malignancy(malig=1)" if legacy else "malignant"
    rows = []
    for n, (tone, malignant, disease) in enumerate(_DDI_ROWS, start=1):
        name = f"{n:06d}.png"
        write_image(root / "images" / name, 500 + n)
        rows.append({"DDI_ID": str(n), "DDI_file": name, "skin_tone": tone,
                     malignancy: str(int(malignant)) if legacy else str(malignant), "disease": disease})
    write_csv(root / "ddi_metadata.csv", [malignancy if c == "malignant" else c for c in DDI_COLUMNS], rows)
    return root


# --- Eczema severity (FORMATS §8; skinbench's documented layout) ------------------------------

ECZEMA_COLUMNS = ["image", "severity", "subject_id", "region", "skin_tone", "sex", "age"]
# subject -> severities of their images ('' = not graded); grades as digits and as words
ECZEMA_SUBJECTS = {"S01": ["0", "clear"], "S02": ["1", "mild", ""], "S03": ["2", "moderate"], "S04": ["3"],
                   "S05": ["severe", "2"]}


def write_eczema(root: Path) -> Path:
    """``eczema.csv`` (image, severity, subject_id, region, skin_tone, sex, age) and ``images/*.png``."""
    rows, n = [], 0
    for subject, grades in ECZEMA_SUBJECTS.items():
        for grade in grades:
            n += 1
            write_image(root / "images" / f"{subject}_{n}.png", 700 + n)
            rows.append({"image": f"images/{subject}_{n}.png", "severity": grade, "subject_id": subject,
                         "region": "antecubital fossa" if n % 2 else "hand", "skin_tone": str(n % 6 + 1),
                         "sex": "F" if n % 3 else "", "age": str(20 + n)})
    write_csv(root / "eczema.csv", ECZEMA_COLUMNS, rows)
    return root
