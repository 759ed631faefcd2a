"""A third-party plugin package arrives through the 'skinbench' entry point group, like a built-in."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import yaml

PLUGIN_SOURCE = textwrap.dedent('''
    import numpy as np
    from skinbench.api import Backbone
    from skinbench.hookspecs import hookimpl

    class MeanColour(Backbone):
        """Mean RGB colour: a third-party backbone."""
        name = "mean-colour"
        params = {"scale": 1.0}
        meta = {"license": "MIT"}

        def embed(self, images):
            return np.stack([np.asarray(i, dtype=np.float32).mean((0, 1)) * self.config["scale"] for i in images])

    @hookimpl
    def skinbench_backbones():
        return [MeanColour]
''')


@pytest.fixture
def third_party_site(tmp_path):
    """An installed distribution 'sb-thirdparty 0.3' declaring the entry point."""
    site = tmp_path / "site"
    (site / "sb_thirdparty").mkdir(parents=True)
    (site / "sb_thirdparty" / "__init__.py").write_text(PLUGIN_SOURCE)
    info = site / "sb_thirdparty-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sb-thirdparty\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[skinbench]\nmean_colour = sb_thirdparty\n")
    (info / "RECORD").write_text("")
    return site


def cli(site, *args, **env):
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run([sys.executable, "-m", "skinbench.cli", *args], env=environ, capture_output=True, text=True)


def test_entry_point_plugin_is_listed_and_runs(tmp_path, third_party_site):
    listing = cli(third_party_site, "plugins", "--kind", "backbone")
    assert listing.returncode == 0, listing.stderr
    line = next(l for l in listing.stdout.splitlines() if "mean-colour" in l)
    assert "sb-thirdparty" in line and "0.3" in line and "MIT" in line
    suite = {"datasets": [{"name": "demo", "params": {"n_patients": 12, "image_size": 24}}],
             "backbones": ["mean-colour"], "heads": ["logreg"],
             "protocol": {"seeds": 1, "dummy_draws": 50}}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    run = cli(third_party_site, "run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "run"), "--no-progress")
    assert run.returncode == 0, run.stderr
    assert "mean-colour" in run.stdout  # the leaderboard names it


def test_autoload_off_and_blocking(tmp_path, third_party_site):
    off = cli(third_party_site, "plugins", SKINBENCH_DISABLE_PLUGIN_AUTOLOAD="1")
    assert off.returncode == 0 and "mean-colour" not in off.stdout and "handcrafted" in off.stdout
    from skinbench.registry import load_catalogue

    catalogue = load_catalogue(blocked=["handcrafted", "skinbench.plugins.heads.logreg"], autoload=False)
    assert "handcrafted" not in catalogue.names("backbone")
    assert "logreg" not in catalogue.names("head")
    assert "none" in catalogue.names("augmenter")
