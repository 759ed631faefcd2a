"""The data audit: near-duplicates across patients, their join, contamination, likely label errors."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from skinbench.api import ConfigError, DataError, PluginMeta
from skinbench.cli import main
from skinbench.data.audit.contamination import contamination, contamination_records, declared_pretraining
from skinbench.data.audit.copies import TRANSFORMS, leaky_copies
from skinbench.data.audit.label_errors import changed_verdicts, likely_label_errors
from skinbench.data.audit.near_duplicates import close_pairs, perceptual_hashes
from skinbench.data.preflight import preflight
from skinbench.data.protocol import Protocol


def leaky_suite(csv, **protocol) -> dict:
    return {"name": "leaky",
            "datasets": [{"name": "generic-csv", "params": {"csv": str(csv), "group_column": "patient_id",
                                                             "label_columns": ["label"]}}],
            "backbones": [{"name": "handcrafted", "params": {"size": 32}}], "heads": ["logreg"],
            "protocol": {"seeds": [0], "dummy_draws": 50, **protocol}}


# ---------------------------------------------------------------- identity


def test_default_identities_are_those_from_before_the_audit():
    """Cell ids of existing runs keep their protocol part: the near-duplicate settings enter only when joining."""
    assert Protocol().identity() == {"test_fraction": 0.2, "tau": 3, "split_seed": 0, "val_folds": 8,
                                     "resample_split": False, "split_file": None, "split_column": None,
                                     "dummy_draws": 1000}
    assert Protocol(scheme="cv").identity() == {"split_seed": 0, "val_folds": 8, "dummy_draws": 1000,
                                                "scheme": "cv", "folds": 5}
    assert Protocol(near_duplicate_threshold=4).identity() == Protocol().identity()  # changes the report only
    joined = Protocol(join_near_duplicates=True, near_duplicate_threshold=4).identity()
    assert joined["join_near_duplicates"] is True and joined["near_duplicate_threshold"] == 4
    assert Protocol(join_near_duplicates=True).identity() != joined  # the threshold moves patients when joining


def test_a_threshold_that_is_not_a_whole_number_is_refused_by_name(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text("datasets: [demo]\nbackbones: [handcrafted]\nheads: [logreg]\n"
                     "protocol: {near_duplicate_threshold: ten}\n")
    assert main(["audit", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "near_duplicate_threshold" in err and "Traceback" not in err
    with pytest.raises(ConfigError):
        preflight({**leaky_suite("x.csv"), "protocol": {"near_duplicate_threshold": 65}})


# ---------------------------------------------------------------- the search


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 2 ** 64 - 1), min_size=0, max_size=60), st.integers(0, 64), st.integers(1, 17))
def test_the_blocked_search_finds_exactly_the_pairs_all_pairs_would(values, threshold, block):
    hashes = np.array(values, dtype=np.uint64)
    i, j, d = close_pairs(hashes, threshold, block=block)
    expected = {(a, b, bin(values[a] ^ values[b]).count("1")) for a in range(len(values))
                for b in range(a + 1, len(values)) if bin(values[a] ^ values[b]).count("1") <= threshold}
    assert set(zip(i.tolist(), j.tolist(), d.tolist())) == expected


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_every_altered_copy_is_found_and_no_two_different_photos_are(tmp_path, transform):
    """One pixel, JPEG at quality 90 and a crop keeping 95% of the area are all found; the demo's distinct photos
    (cheek and forehead of one patient included) are never paired."""
    csv = leaky_copies(tmp_path / "data", n_patients=12, image_size=64, transform=transform)
    checked = preflight(leaky_suite(csv), cache_dir=tmp_path / "cache")
    pairs = checked.datasets[0].near_duplicates
    assert len(pairs) == 24  # 12 patients x 2 regions, each with its copy
    assert set(zip(pairs["patient_a"].str[1:], pairs["patient_b"].str[1:])) == {(f"{p:03d}", f"{p:03d}")
                                                                                for p in range(12)}
    assert all(a.rsplit("_", 1)[0].split("/")[-1][1:] in b for a, b in zip(pairs["image_a"], pairs["image_b"]))


def test_photos_of_one_patient_under_two_ids_are_not_flagged(tmp_path):
    csv = leaky_copies(tmp_path / "data", n_patients=12, image_size=64, copies=False)
    frame = pd.read_csv(csv)
    frame.loc[frame["image"].str.contains("forehead"), "patient_id"] += "-forehead"  # cheek and forehead apart
    frame.to_csv(csv, index=False)
    checked = preflight(leaky_suite(csv), cache_dir=tmp_path / "cache")
    assert checked.datasets[0].near_duplicates.empty


def test_hashes_are_cached_by_file_content(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
    first = perceptual_hashes([str(path)], tmp_path / "cache")
    cache = next((tmp_path / "cache" / "phash").glob("*.json"))
    stored = json.loads(cache.read_text())
    assert list(stored.values()) == [f"{int(first[0]):016x}"]
    stored = {digest: "0" * 16 for digest in stored}  # the cache is what a rerun reads, keyed by the file digest
    cache.write_text(json.dumps(stored))
    copy = tmp_path / "same-bytes.png"
    copy.write_bytes(path.read_bytes())
    assert perceptual_hashes([str(copy)], tmp_path / "cache").tolist() == [0]


def test_an_unreadable_image_is_named(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError) as error:
        perceptual_hashes([str(bad)], tmp_path / "cache")
    assert "bad.png" in str(error.value) and "replace the file" in str(error.value)


# ---------------------------------------------------------------- joining


@pytest.mark.parametrize("protocol", [{"repeats": 3}, {"scheme": "cv", "folds": 4}])
def test_joined_copies_sit_with_their_originals_in_every_split(tmp_path, protocol):
    csv = leaky_copies(tmp_path / "data", n_patients=16, image_size=32)
    apart = preflight(leaky_suite(csv, **protocol), cache_dir=tmp_path / "cache").datasets[0]
    assert (apart.near_duplicates["straddles"] > 0).any()  # reported, with the sides of every split
    assert set(apart.near_duplicates["sides"].iloc[0]) == {Protocol(**protocol).part_name(p) for p in apart.splits}
    joined = preflight(leaky_suite(csv, join_near_duplicates=True, **protocol), cache_dir=tmp_path / "cache").datasets[0]
    groups = joined.tasks[0].samples.set_index("image")["group"]
    for pair in apart.near_duplicates.itertuples():
        a, b = groups[pair.image_a], groups[pair.image_b]
        assert a == b
        assert all((a in test) == (b in test) for test in joined.splits.values())
    assert (joined.near_duplicates["straddles"] == 0).all() and len(joined.near_duplicates) == len(apart.near_duplicates)
    assert joined.key != apart.key  # new data fingerprint: new cells


# ---------------------------------------------------------------- contamination


def test_a_backbone_pretrained_on_ham10000_is_flagged_on_ham10000_and_not_on_the_demo():
    from skinbench.datasets.demo import DemoDataset
    from skinbench.datasets.ham10000 import Ham10000

    ham = declared_pretraining(PluginMeta(pretraining_data=["HAM10000"]))
    assert contamination(ham, Ham10000.meta.source).value == "yes"
    assert contamination(ham, DemoDataset.meta.source).value == "no"
    assert contamination(["ISIC archive 2019"], ["ham-10000"]).value == "unknown"  # an unknown name: no claim
    assert contamination(["ISIC 2019"], ["ham-10000"]).value == "yes"  # the archive holds HAM10000
    assert contamination(["LAION-2B"], ["Fitzpatrick17k"]).value == "possible"  # a web crawl, a web atlas
    assert contamination(["LAION-2B"], ["DDI"]).value == "no"
    assert contamination(None, ["HAM10000"]).value == "unknown"  # undeclared: the honest default
    assert contamination([], []).value == "unknown"
    assert declared_pretraining(PluginMeta()) is None and declared_pretraining(PluginMeta(pretraining_data=[])) == []


def test_every_builtin_backbone_and_dataset_gets_a_record():
    from skinbench.configuration.registry import load_catalogue

    catalogue = load_catalogue()
    backbones = [catalogue.entries["backbone"][name].cls for name in ("handcrafted", "efficientnet-lite0", "panderm",
                                                                        "timm")]
    datasets = [type("Loaded", (), {"label": name, "plugin": catalogue.entries["dataset"][name].cls})
                for name in ("ham10000", "demo", "generic-csv")]
    labelled = [type("B", (), {"label": cls.name, "meta": cls.meta}) for cls in backbones]
    values = {(r["dataset"], r["backbone"]): r["value"] for r in contamination_records(datasets, labelled)}
    assert values[("ham10000", "panderm")] == "possible"
    assert values[("ham10000", "efficientnet-lite0")] == "no"
    assert values[("ham10000", "timm")] == "unknown"
    assert values[("demo", "handcrafted")] == "no"
    assert {values[("generic-csv", b.name)] for b in backbones} == {"unknown"}


# ---------------------------------------------------------------- label errors


def test_cleanlab_recovers_most_flipped_labels_of_a_simulated_test_set():
    """200 images, 3 classes, a model right ~85% of the time; 10% of the labels flipped."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    logits = rng.normal(0, 1, (200, 3))
    logits[np.arange(200), y] += 2.5
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    flipped = rng.choice(200, 20, replace=False)
    given = y.copy()
    given[flipped] = (y[flipped] + rng.integers(1, 3, 20)) % 3
    pooled = pd.DataFrame({"image": [f"i{k}" for k in range(200)], "group": [f"p{k // 2}" for k in range(200)],
                           "y_true": given.astype(str), **{f"proba_{c}": proba[:, c] for c in range(3)}})
    issues, problem = likely_label_errors(pooled)
    found = set(issues["image"])
    truth = {f"i{k}" for k in flipped}
    precision, recall = len(found & truth) / max(len(found), 1), len(found & truth) / len(truth)
    print(f"precision={precision:.2f} recall={recall:.2f} flagged={len(found)}")
    assert problem == "" and recall >= 0.7 and precision >= 0.6


def test_too_few_classes_are_reported_not_guessed():
    pooled = pd.DataFrame({"image": ["a", "b"], "group": ["p", "q"], "y_true": ["x", "x"],
                           "proba_x": [0.9, 0.2], "proba_y": [0.1, 0.8]})
    issues, problem = likely_label_errors(pooled)
    assert issues.empty and "fewer than two classes" in problem


def test_changed_verdicts_lists_only_the_configurations_that_change():
    keys = {"dataset": "d", "task": "t", "backbone_label": "b", "augmenter_label": "none", "head_label": "h"}
    before = pd.DataFrame([{**keys, "cell_id": "1", "verdict": "above_chance", "macro_f1_mean": 0.7},
                           {**keys, "cell_id": "2", "verdict": "chance", "macro_f1_mean": 0.4}])
    after = pd.DataFrame([{"cell_id": "1", "verdict": "chance", "macro_f1_mean": 0.6},
                          {"cell_id": "2", "verdict": "chance", "macro_f1_mean": 0.41}])
    changed = changed_verdicts(before, after)
    assert [(c["cell_id"], c["verdict"], c["verdict_without"]) for c in changed] == [("1", "above_chance", "chance")]
