"""Suite files: which datasets, backbones, augmenters and heads to cross, under which protocol.

A suite is a typed pydantic model: every wrong type names its key path and the expected
type, an unknown key gets a "did you mean" suggestion, and ``skinbench schema`` exports the
JSON Schema so editors can complete and check suite files.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from skinbench.api import ConfigError, validation_lines
from skinbench.data.protocol import Protocol

from skinbench.vocabulary import KINDS  # noqa: E402,F401 - the suite's plugin keys


class Entry(BaseModel):
    """One plugin named in a suite, with its parameter overrides (a bare name means all defaults)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    tasks: list[str] | None = None
    """Datasets only: the tasks to run (default: all)."""
    label: str | None = None
    """Datasets only: the display name on leaderboards and the published site."""

    @field_validator("tasks", mode="before")
    @classmethod
    def _one_task(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("params", mode="before")
    @classmethod
    def _no_params(cls, value: Any) -> Any:
        return {} if value is None else value


class PluginsSection(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    block: list[str] = Field(default_factory=list)
    autoload: bool | None = None

    @field_validator("block", mode="before")
    @classmethod
    def _one_name(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Executor(BaseModel):
    """Where the grid runs: in this process (``local``) or on a Dask cluster (``dask``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Literal["local", "dask"] = "local"
    workers: int | None = Field(None, ge=1)
    """dask without a scheduler: worker processes of the LocalCluster (default: one per core)."""
    threads_per_worker: int = Field(1, ge=1)
    scheduler: str | None = None
    """dask: address of an existing scheduler (tcp://host:8786); none starts a LocalCluster."""
    gpus_per_worker: int = Field(0, ge=0)
    """LocalCluster workers advertise this many ``GPU`` resources (embedding tasks on CUDA need one)."""
    shared_cache: bool = False
    """Workers see the driver's cache folder (shared filesystem): augmenters cache there directly."""


class Suite(BaseModel):
    """A whole suite, every default filled in."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = "suite"
    description: str = ""
    datasets: list[Entry] = Field(min_length=1)
    backbones: list[Entry] = Field(min_length=1)
    augmenters: list[Entry] = Field(default_factory=lambda: [Entry(name="none")], min_length=1)
    heads: list[Entry] = Field(min_length=1)
    protocol: Protocol = Field(default_factory=Protocol)
    plugins: PluginsSection = Field(default_factory=PluginsSection)
    executor: Executor = Field(default_factory=Executor)

    @field_validator("datasets", "backbones", "augmenters", "heads", mode="before")
    @classmethod
    def _entries(cls, value: Any) -> Any:
        """A lone entry is a list of one, and a bare name is an entry with default parameters."""
        if value is None:
            return value
        items = value if isinstance(value, list) else [value]
        return [{"name": item} if isinstance(item, str) else item for item in items]

    @field_validator("protocol", "plugins", "executor", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def block(self) -> list[str]:
        return self.plugins.block

    @property
    def autoload(self) -> bool | None:
        return self.plugins.autoload


def demo_suite_path() -> Path:
    return Path(str(resources.files("skinbench") / "suites" / "demo.yaml"))


def load_suite(source: str | Path | dict | Suite | None) -> Suite:
    """Parse a suite from a YAML path, a dict or a :class:`Suite` (``None`` = the embedded demo suite)."""
    if isinstance(source, Suite):
        return source
    if source is None:
        source = demo_suite_path()
    if isinstance(source, dict):
        raw, where = source, "suite"
    else:
        where = str(source)
        raw = read_yaml_mapping(source, "a suite, with keys " + ", ".join(Suite.model_fields))
        raw.setdefault("name", Path(where).stem)
    try:
        return Suite.model_validate(raw)
    except ValidationError as exc:
        lines = validation_lines(exc, Suite)
        raise ConfigError(f"{where}: the suite is not valid:\n" + "\n".join(f"- {line}" for line in lines)) from None


def read_yaml_mapping(path: str | Path, what: str) -> dict:
    """A YAML file whose top level must be a mapping; every failure names the file and says what it should hold."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; expected {what}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; expected a YAML file with {what}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected {what} at the top level")
    return data


def resolved(suite: Suite, plugins: dict[str, list]) -> dict[str, Any]:
    """The suite with every default filled in and each plugin's resolved identity, as written to the run directory."""
    out: dict[str, Any] = {"name": suite.name, "description": suite.description, "protocol": suite.protocol.as_dict(),
                           "plugins": suite.plugins.model_dump(), "executor": suite.executor.model_dump()}
    for key, instances in plugins.items():
        entries = getattr(suite, key)
        out[key] = [{"name": p.name, "params": p.config, "label": p.label,
                     **({"tasks": e.tasks} if e.tasks is not None else {}),
                     **({"display_name": e.label} if e.label else {}),
                     **({"labelled_images": p.labelled_images} if p.kind == "head" else {}),
                     "identity": p.identity.record()} for p, e in zip(instances, entries)]
    return out
