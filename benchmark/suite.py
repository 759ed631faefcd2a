"""Suite files: which datasets, backbones, augmenters and heads to cross, under which protocol."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .api import ConfigError
from .protocol import Protocol

KINDS = {"datasets": "dataset", "backbones": "backbone", "augmenters": "augmenter", "heads": "head"}
TOP_LEVEL = {"name", "description", "protocol", "plugins", *KINDS}


@dataclass
class Entry:
    """One plugin named in a suite, with its parameter overrides (and task subset for datasets)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    tasks: list[str] | None = None


@dataclass
class Suite:
    name: str
    datasets: list[Entry]
    backbones: list[Entry]
    augmenters: list[Entry]
    heads: list[Entry]
    protocol: Protocol
    block: list[str] = field(default_factory=list)
    autoload: bool | None = None
    description: str = ""


def demo_suite_path() -> Path:
    return Path(str(resources.files("skinbench") / "suites" / "demo.yaml"))


def load_suite(source: str | Path | dict | None) -> Suite:
    """Parse a suite from a YAML path or a dict (``None`` = the embedded demo suite)."""
    if source is None:
        source = demo_suite_path()
    if isinstance(source, dict):
        raw, where = source, "suite"
    else:
        where = str(source)
        raw = read_yaml_mapping(source, f"a suite, with keys {', '.join(sorted(TOP_LEVEL))}")
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(TOP_LEVEL))}")
    entries = {key: _entries(raw.get(key), key, where) for key in KINDS}
    for key in ("datasets", "backbones", "heads"):
        if not entries[key]:
            raise ConfigError(f"{where}: '{key}' is empty; name at least one {KINDS[key]}")
    plugins = raw.get("plugins") or {}
    return Suite(
        name=str(raw.get("name", Path(where).stem)),
        description=str(raw.get("description", "")),
        protocol=Protocol.from_dict(raw.get("protocol")),
        block=list(plugins.get("block", [])),
        autoload=plugins.get("autoload"),
        **{key: entries[key] or ([Entry("none")] if key == "augmenters" else []) for key in KINDS},
    )


def read_yaml_mapping(path: str | Path, what: str) -> dict:
    """A YAML file whose top level must be a mapping; every failure names the file and says what it should hold."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; expected {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected {what} at the top level")
    return data


def _entries(raw: Any, key: str, where: str) -> list[Entry]:
    out = []
    for i, item in enumerate(raw or []):
        if isinstance(item, str):
            out.append(Entry(item))
        elif isinstance(item, dict) and "name" in item:
            extra = sorted(set(item) - {"name", "params", "tasks"})
            if extra:
                raise ConfigError(f"{where}: {key}[{i}] has unknown key(s) {', '.join(extra)}; use name, params, tasks")
            out.append(Entry(str(item["name"]), dict(item.get("params") or {}), item.get("tasks")))
        else:
            raise ConfigError(f"{where}: {key}[{i}] must be a name or a mapping with 'name' and optional 'params'")
    return out


def resolved(suite: Suite, plugins: dict[str, list]) -> dict[str, Any]:
    """The suite with every default filled in, as written to the run directory."""
    out: dict[str, Any] = {"name": suite.name, "description": suite.description, "protocol": suite.protocol.as_dict(),
                           "plugins": {"block": suite.block, "autoload": suite.autoload}}
    for key, instances in plugins.items():
        out[key] = [{"name": p.name, "params": p.config, "label": p.label} for p in instances]
    return out
