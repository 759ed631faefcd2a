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


def installed_distribution(site, name: str, version: str, modules: dict[str, str], entry_point: str):
    """``site`` as a folder on PYTHONPATH holding distribution ``name`` with ``modules`` (dotted name -> source)
    and one entry point in the 'skinbench' group (``alias = module``)."""
    for module, source in modules.items():
        path = site.joinpath(*module.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[skinbench]\n{entry_point}\n")
    (info / "RECORD").write_text("")
    return site


@pytest.fixture
def third_party_site(tmp_path):
    """An installed distribution 'sb-thirdparty 0.3' declaring the entry point."""
    return installed_distribution(tmp_path / "site", "sb-thirdparty", "0.3", {"sb_thirdparty.__init__": PLUGIN_SOURCE},
                                  "mean_colour = sb_thirdparty")


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
    from skinbench.configuration.registry import load_catalogue

    catalogue = load_catalogue(blocked=["handcrafted", "skinbench.plugins.heads.logreg"], autoload=False)
    assert "handcrafted" not in catalogue.names("backbone")
    assert "logreg" not in catalogue.names("head")
    assert "none" in catalogue.names("augmenter")


def test_the_backbone_written_in_docs_plugins_md_runs_end_to_end(tmp_path):
    """docs/plugins.md's example, copied as it stands into a package with an entry point, runs a suite."""
    import re
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    source = re.search(r"```python\n(.*?)```", docs, re.S).group(1)
    assert "from skinbench.sdk import" in source and "skinbench.api" not in source
    site = installed_distribution(tmp_path / "site", "my-package", "1.2",
                                  {"my_package.__init__": "", "my_package.my_backbone": source},
                                  "my_backbone = my_package.my_backbone")
    suite = {"datasets": [{"name": "demo", "params": {"n_patients": 12, "image_size": 24}}],
             "backbones": [{"name": "my-backbone", "params": {"dim": 6, "pool": "max"}}], "heads": ["logreg"],
             "protocol": {"seeds": 1, "dummy_draws": 50}}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    run = cli(site, "run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "run"), "--no-progress",
              "--format", "csv")
    assert run.returncode == 0, run.stderr
    assert "my-backbone(dim=6, pool=max)" in run.stdout


def test_built_in_plugins_import_only_the_sdk():
    """No module under plugins/ or datasets/ imports a core module other than skinbench.sdk, or another
    family's private module (a plugin folder's own helpers, e.g. heads/_torch_utils.py, are its own)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offences = []
    for folder, package in ((root / "plugins", "skinbench.plugins"), (root / "datasets", "skinbench.datasets")):
        for path in folder.rglob("*.py"):
            family = ".".join([package, *path.relative_to(folder).parts[:-1]])
            for node in ast.walk(ast.parse(path.read_text())):
                names = [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    else [a.name for a in node.names] if isinstance(node, ast.Import) else []
                for name in names:
                    if name.split(".")[0] == "skinbench" and name != "skinbench.sdk" \
                            and not name.startswith(family + "."):
                        offences.append(f"{path.relative_to(root)}: {name}")
    assert offences == []
