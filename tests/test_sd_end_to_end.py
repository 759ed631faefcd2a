"""sd-img2img inside a real (tiny) suite run, and the real-vs-synthetic strip from its log."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from PIL import Image
from skinbench.testing import build_tiny_sd

from skinbench.leaderboard.strip import synthetic_strip
from skinbench.execution.runner import run_suite


@pytest.fixture()
def one_thread():
    """Tiny tensors: thread hand-offs cost more than the maths on a busy 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_suite_with_sd_img2img_logs_provenance_and_renders_a_strip(tmp_path, one_thread):
    model = build_tiny_sd(tmp_path / "tiny_sd")
    suite = {
        "name": "sd-e2e",
        "datasets": [{"name": "demo", "params": {"n_patients": 12, "image_size": 32, "root": str(tmp_path / "demo")},
                      "tasks": ["texture", "oiliness"]}],
        "backbones": [{"name": "handcrafted"}],
        "augmenters": [{"name": "sd-img2img", "params": {
            "model": str(model), "resolution": 32, "steps": [4, 5], "strength": [0.25, 0.35],
            "batch_size": 4, "lpips_net": None, "progress": False}}],
        "heads": [{"name": "logreg"}],
        "protocol": {"test_fraction": 0.25, "tau": 3, "seeds": [0], "val_folds": 2},
    }
    results = run_suite(suite, tmp_path / "run", cache_dir=tmp_path / "cache")
    ours = results[results["augmenter"] == "sd-img2img"]
    assert set(ours["status"]) == {"ok"} and (ours["n_synthetic"] > 0).all()

    log = pd.read_csv(tmp_path / "run" / "generation_log.csv")
    assert set(log["task"]) == {"texture", "oiliness"}
    assert log.groupby("task")["scheduler"].first().to_dict() == {"oiliness": "dpm_multistep", "texture": "euler_ancestral"}
    test_patients = set(json.loads(next((tmp_path / "run" / "split").glob("demo*.json")).read_text())["test_groups"])
    assert test_patients and not set(log["group"].astype(str)) & test_patients
    assert all(str(tmp_path / "cache") in p for p in log["image"])

    strip = synthetic_strip(log, tmp_path / "strip.png", per_task=2)
    width, height = Image.open(strip).size
    assert width > height > 0  # two task rows of four images each
