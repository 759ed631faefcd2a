"""Every suite shipped with skinbench names existing plugins with existing parameters."""
from __future__ import annotations

from pathlib import Path

import pytest

from skinbench.configuration.registry import load_catalogue
from skinbench.data.preflight import instantiate
from skinbench.configuration.suite import demo_suite_path, load_suite

SUITES = sorted(demo_suite_path().parent.glob("*.yaml"))


def test_the_demo_and_thesis_suites_ship():
    assert {"demo.yaml", "thesis.yaml", "thesis_finetune.yaml"} <= {p.name for p in SUITES}


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_shipped_suite_resolves(path: Path):
    suite = load_suite(path)
    plugins = instantiate(load_catalogue(autoload=False), suite)
    assert plugins["datasets"] and plugins["backbones"] and plugins["heads"]
