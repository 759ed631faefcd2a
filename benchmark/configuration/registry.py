"""Builds the plugin manager and the catalogue of plugins it provides.

Built-in modules are registered exactly like third-party ones (as pytest does
with ``default_plugins``); third-party packages declare an entry point in the
group ``skinbench``. Autoloading can be switched off with the environment
variable ``SKINBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` or ``autoload=False``.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
from dataclasses import dataclass
from typing import Any, Iterable

import pluggy

from skinbench import hookspecs
from skinbench.api import PLUGIN_KINDS, ConfigError, Plugin, did_you_mean

BUILTIN_PACKAGES = (
    "skinbench.plugins.backbones",
    "skinbench.plugins.augmenters",
    "skinbench.plugins.heads",
    "skinbench.datasets",
)
HOOK_OF_KIND = {
    "backbone": "skinbench_backbones",
    "augmenter": "skinbench_augmenters",
    "head": "skinbench_heads",
    "dataset": "skinbench_datasets",
}


@dataclass(frozen=True)
class PluginEntry:
    """One plugin class with where it came from, for ``skinbench plugins``."""

    kind: str
    name: str
    cls: type
    source: str  # registration name: module path or entry point name
    package: str
    version: str


def builtin_modules() -> list[str]:
    """Every module of the built-in plugin packages, one plugin per file."""
    names = []
    for package_name in BUILTIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                names.append(f"{package_name}.{info.name}")
    return sorted(names)


def autoload_disabled() -> bool:
    return os.environ.get("SKINBENCH_DISABLE_PLUGIN_AUTOLOAD", "") not in ("", "0", "false")


def make_plugin_manager(blocked: Iterable[str] = (), autoload: bool | None = None, extra: Iterable[Any] = (),
                        broken: dict[str, str] | None = None) -> pluggy.PluginManager:
    """A manager with built-ins, entry-point plugins (unless autoload is off) and ``extra`` objects.

    An entry point that fails to import is recorded in ``broken`` (name -> reason) instead of
    raising, so the caller can name it and say how to block it."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    for module_name in builtin_modules():
        if not pm.is_blocked(module_name):
            pm.register(importlib.import_module(module_name), name=module_name)
    if autoload if autoload is not None else not autoload_disabled():
        load_entry_points(pm, broken if broken is not None else {})
    for obj in extra:
        pm.register(obj)
    return pm


def load_entry_points(pm: pluggy.PluginManager, broken: dict[str, str]) -> None:
    """pluggy's ``load_setuptools_entrypoints`` one entry point at a time, so one broken package is named, not fatal."""
    for dist in list(importlib.metadata.distributions()):
        for ep in dist.entry_points:
            if ep.group != hookspecs.PROJECT or pm.is_blocked(ep.name):
                continue
            try:
                pm.load_setuptools_entrypoints(hookspecs.PROJECT, name=ep.name)
            except Exception as exc:  # noqa: BLE001 - any import-time error of a third-party package
                broken[ep.name] = (f"plugin entry point '{ep.name}' of package '{dist.metadata['name']}' failed to "
                                   f"import ({exc.__class__.__name__}: {exc}); fix or uninstall it, or add it to "
                                   f"plugins: {{block: [{ep.name}]}} in the suite")


def _package_of(pm: pluggy.PluginManager, plugin: object) -> tuple[str, str]:
    for candidate, dist in pm.list_plugin_distinfo():
        if candidate is plugin:
            return dist.project_name, dist.version
    version = importlib.metadata.version("skinbench") if _installed("skinbench") else "dev"
    return "skinbench", version


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.version(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


class Catalogue:
    """Plugin classes by kind and name, as the hooks reported them."""

    def __init__(self, pm: pluggy.PluginManager, blocked: Iterable[str] = (), broken: dict[str, str] | None = None):
        self.pm = pm
        blocked = set(blocked)
        self.broken: dict[str, str] = dict(broken or {})
        self.entries: dict[str, dict[str, PluginEntry]] = {kind: {} for kind in PLUGIN_KINDS}
        for kind, hook_name in HOOK_OF_KIND.items():
            hook = getattr(pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                package, version = _package_of(pm, impl.plugin)
                try:
                    classes = impl.function() or []
                except Exception as exc:  # noqa: BLE001 - a third-party hook may raise anything
                    self.broken[impl.plugin_name] = (f"plugin '{impl.plugin_name}' raised in its {hook_name} hook "
                                                     f"({exc.__class__.__name__}: {exc}); fix it or block it")
                    continue
                for cls in classes:
                    self._add(kind, cls, impl.plugin_name, package, version, blocked)

    def _add(self, kind: str, cls: type, source: str, package: str, version: str, blocked: set[str]) -> None:
        base = PLUGIN_KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ConfigError(f"plugin '{source}' returned {cls!r} from its {kind} hook; expected a {base.__name__} subclass")
        if cls.name in blocked:
            return
        if cls.name in self.entries[kind]:
            other = self.entries[kind][cls.name]
            raise ConfigError(f"{kind} name '{cls.name}' is provided by both '{other.source}' and '{source}'; block one")
        version = str(cls.meta.version or version)
        self.entries[kind][cls.name] = PluginEntry(kind, cls.name, cls, source, package, version)

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def create(self, kind: str, name: str, params: dict[str, Any] | None = None) -> Plugin:
        """Instantiate a plugin; unknown names and parameters raise with the known ones listed."""
        if name not in self.entries[kind]:
            known = ", ".join(self.names(kind)) or "(none)"
            broken = "".join(f"; {reason}" for reason in self.broken.values())
            raise ConfigError(f"unknown {kind} '{name}'{did_you_mean(name, self.names(kind))}; known {kind}s: {known}{broken}")
        return self.entries[kind][name].cls(**(params or {}))

    def rows(self) -> list[dict[str, str]]:
        """One row per plugin for listing."""
        out = []
        for kind in PLUGIN_KINDS:
            for name in self.names(kind):
                entry = self.entries[kind][name]
                meta = entry.cls.meta
                out.append({
                    "kind": kind, "name": name, "version": entry.version, "package": entry.package,
                    "source": entry.source, "license": meta.license,
                    "description": (entry.cls.__doc__ or "").strip().splitlines()[0] if entry.cls.__doc__ else "",
                })
        return out


def load_catalogue(blocked: Iterable[str] = (), autoload: bool | None = None, extra: Iterable[Any] = ()) -> Catalogue:
    blocked, broken = list(blocked), {}
    return Catalogue(make_plugin_manager(blocked, autoload, extra, broken), blocked, broken)
