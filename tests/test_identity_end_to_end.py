"""One identity, end to end: whatever can change a result makes new cells and new cache entries."""
from __future__ import annotations

import importlib
import sys
import textwrap

import numpy as np

from skinbench.runner import run_suite
from skinbench.validate import preflight

PLUGIN = textwrap.dedent('''
    import numpy as np
    from skinbench.api import Backbone
    from skinbench.hookspecs import hookimpl

    CALLS = []

    class Edited(Backbone):
        """Mean colour; the test edits this file (same name, same version) to change what it returns."""
        name = "edited"
        meta = {{"version": "1.0"}}

        def embed(self, images):
            CALLS.append(len(images))
            return np.stack([np.asarray(i, dtype=np.float32).mean((0, 1)) * {scale} for i in images])

    class Hooks:
        @hookimpl
        def skinbench_backbones(self):
            return [Edited]
''')


def _suite(backbone) -> dict:
    return {"datasets": [{"name": "demo", "params": {"n_patients": 12, "image_size": 24}}],
            "backbones": [backbone], "heads": ["logreg"], "protocol": {"seeds": 1, "dummy_draws": 50}}


def _load(tmp_path, scale: float):
    (tmp_path / "edited_plugin.py").write_text(PLUGIN.format(scale=scale))
    sys.modules.pop("edited_plugin", None)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("edited_plugin")
    finally:
        sys.path.remove(str(tmp_path))
    from skinbench.identity import code_digest
    code_digest.cache_clear()
    return module


def test_a_plugin_whose_code_changed_is_re_embedded_into_new_cells(tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    first_module = _load(tmp_path, 1.0)
    first = run_suite(_suite("edited"), out, cache_dir=cache, extra_plugins=[first_module.Hooks()])
    assert sum(first_module.CALLS) > 0
    edited = _load(tmp_path, 0)  # embed now returns zeros: same name, same version
    second = run_suite(_suite("edited"), out, cache_dir=cache, extra_plugins=[edited.Hooks()])
    assert sum(edited.CALLS) > 0, "served from the old cache"
    models = second[second["backbone"] == "edited"]
    assert models["cell_id"].nunique() == 2 * first[first["backbone"] == "edited"]["cell_id"].nunique()


def test_a_replaced_embeddings_file_at_the_same_path_gives_new_cell_ids(tmp_path):
    from skinbench.datasets.demo import DemoDataset

    tasks = DemoDataset(n_patients=12, image_size=24).tasks()
    paths = sorted({p for t in tasks for p in t.samples["image"]})
    file = tmp_path / "embeddings.npz"
    rng = np.random.default_rng(0)
    np.savez(file, **{p: rng.normal(size=8) for p in paths})
    backbone = {"name": "precomputed", "params": {"file": str(file), "model": "elsewhere"}}
    before = preflight(_suite(backbone)).plugins["backbones"][0].identity
    first = run_suite(_suite(backbone), tmp_path / "run", cache_dir=tmp_path / "cache")
    np.savez(file, **{p: rng.normal(size=8) for p in paths})
    after = preflight(_suite(backbone)).plugins["backbones"][0].identity
    assert before.params == after.params and before.digest != after.digest
    second = run_suite(_suite(backbone), tmp_path / "run", cache_dir=tmp_path / "cache")
    new = second[~second["cell_id"].isin(first["cell_id"])]
    assert len(new) == len(first[first["backbone"] == "precomputed"])
    assert set(new["backbone"]) == {"precomputed"}


def test_suite_yaml_and_receipt_record_every_identity(tmp_path, suite_factory):
    import json

    import yaml

    out = tmp_path / "run"
    checked = preflight(suite_factory())
    run_suite(suite_factory(), out)
    resolved = yaml.safe_load((out / "suite.yaml").read_text())
    backbone = resolved["backbones"][0]["identity"]
    assert backbone["digest"] == checked.plugins["backbones"][0].identity.digest
    assert {"package", "version", "code", "params", "artefacts"} <= set(backbone)
    receipt = json.loads((out / "receipt.json").read_text())
    assert receipt["plugins_used"]["heads"][0]["name"] == "logreg"
    assert any(p["name"] == "handcrafted" for p in receipt["plugins_found"])
