"""One tiny real run and the site published from it, shared by the publish and browser tests.

Loaded with ``pytest_plugins``; PYTEST_DONT_REWRITE (no asserts here, and the tests import its constants first).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from skinbench.leaderboard.site import Published, publish
from skinbench.execution.runner import run_suite

HOSTILE_NAME = '<script>alert("owned")</script> & <b>clinic</b> $x^2$'
"""A dataset display name (the suite's ``label:``) that must reach every page and figure as text."""
TEST_BOOTSTRAP = 200
"""Resamples for the tests: enough for stable intervals on 8 test images, cheap on 2 cores."""


@dataclass
class PublishedRun:
    run_dir: Path
    site: Path
    published: Published


def demo_suite() -> dict:
    """A 16-patient demo with one binary and one ordinal task, real-only and classical augmentation."""
    from conftest import tiny_suite

    suite = tiny_suite(augmenters=[{"name": "none"}, {"name": "classical"}])
    suite["datasets"][0].update(label=HOSTILE_NAME, tasks=["moisture", "texture"])
    return suite


@pytest.fixture(scope="session")
def published_run(tmp_path_factory) -> PublishedRun:
    root = tmp_path_factory.mktemp("publish")
    run_suite(demo_suite(), root / "run")
    published = publish([root / "run"], root / "site", n_boot=TEST_BOOTSTRAP)
    return PublishedRun(run_dir=root / "run", site=root / "site", published=published)
