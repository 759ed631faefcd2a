"""One resolved identity per plugin instance, and the cell ids and cache keys derived from it.

Everything that can change a result is in the identity: the plugin's name, package and
version, a digest of its source code, its non-runtime parameters, and its resolved
artefacts (weights hash, model folder fingerprint, prompt digest, precision and device type
in use). Cell ids, embedding cache keys and augmentation cache keys are all hashes of
identities, so two runs that could differ never share a cell or a cache entry.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
from functools import lru_cache
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ConfigDict

from skinbench.hashing import config_hash

CONTRACT_MODULES = frozenset({"skinbench.hookspecs", "skinbench.configuration.messages"})
"""Modules that only declare hooks or word messages: editing them must not invalidate every cache."""

CORE_MODULES = ("skinbench.metrics", "skinbench.baselines", "skinbench.data.protocol", "skinbench.api",
                "skinbench.execution.embedding", "skinbench.data.groups", "skinbench.data.curves",
                "skinbench.execution.folds", "skinbench.data.grouped_folds")
"""Core code that computes scores, dummies, splits and the data path of every cell: in every cell id."""


class PluginIdentity(BaseModel):
    """The resolved identity of one plugin instance, as recorded in ``suite.yaml`` and the receipt."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    kind: str
    name: str
    package: str
    version: str
    code: str
    params: dict[str, Any]
    artefacts: dict[str, Any]

    @property
    def digest(self) -> str:
        """Hash of the whole identity: the root of every cell id and cache key of this plugin."""
        return config_hash(self.model_dump(mode="json"), 32)

    def record(self) -> dict[str, Any]:
        """The identity with its digest, for ``suite.yaml``, ``receipt.json`` and the cache's ``identity.json``."""
        return {**self.model_dump(mode="json"), "digest": self.digest}


def resolve_identity(plugin: Any) -> PluginIdentity:
    """Resolve ``plugin``'s identity: calls its :meth:`~skinbench.api.Plugin.artefacts` (which may
    hash weights or raise :class:`~skinbench.api.ConfigError` when they do not resolve)."""
    cls = type(plugin)
    package, version = distribution_of(cls)
    declared = cls.meta.version if getattr(cls, "meta", None) is not None else None
    params = {k: v for k, v in plugin.config.items() if k not in cls.runtime_params}
    return PluginIdentity(kind=cls.kind, name=cls.name, package=package, version=str(declared or version),
                          code=code_digest(cls), params=_jsonable(params), artefacts=_jsonable(plugin.artefacts()))


def _jsonable(value: Any) -> Any:
    """Tuples and paths as JSON would store them, so an identity equals its own round trip."""
    import json

    return json.loads(json.dumps(value, sort_keys=True, default=str))


@lru_cache(maxsize=None)
def distribution_of(cls: type) -> tuple[str, str]:
    """(distribution name, version) of the package that defines ``cls``; ('', 'unknown') for loose modules."""
    top = cls.__module__.split(".")[0]
    try:  # the usual case, and fast: the distribution is named like its top-level package
        dist = importlib.metadata.distribution(top)
        return dist.metadata["Name"], dist.version
    except importlib.metadata.PackageNotFoundError:
        pass
    for name in _packages_distributions().get(top, []):
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "", "unknown"


@lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    """Top-level module -> distributions; scans every installed file list, so once per process."""
    return importlib.metadata.packages_distributions()


@lru_cache(maxsize=None)
def code_digest(cls: type) -> str:
    """sha256 over the source of the modules that define ``cls`` and its bases, of the modules
    those import from the same top-level package, and of the ``code_modules`` ``cls`` and its bases declare.

    An edited plugin (same name and version, different code) therefore gets a new identity.
    """
    return _digest_of_modules(tuple(sorted(_modules_of(cls))))


def core_digest() -> str:
    """Digest of the core modules that score every cell (:data:`CORE_MODULES`)."""
    return _digest_of_modules(CORE_MODULES)


def _digest_of_modules(names: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for name in names:
        h.update(f"{name}:{_source_digest(name)}".encode())
    return h.hexdigest()[:24]


def _source_digest(name: str) -> str:
    """:func:`_module_digest` of a module, read from its file when it is not imported: hashing never runs a
    module (nor the torch or scikit-learn it imports), and gives the same digest imported or not."""
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin and origin.endswith(".py") and os.path.isfile(origin):
            stat = os.stat(origin)
            return _file_fingerprint(origin, stat.st_size, stat.st_mtime_ns)
        module = importlib.import_module(name)
    return _module_digest(module)


def _modules_of(cls: type) -> set[str]:
    defining = {c.__module__ for c in cls.__mro__ if c.__module__ not in ("builtins", "abc", "typing")}
    found = {name for c in cls.__mro__ for name in (c.__dict__.get("code_modules") or ())}
    for name in defining:
        module = sys.modules.get(name)
        if module is None:
            continue
        found.add(name)
        found |= _same_package_imports(module)
    return found - CONTRACT_MODULES


def _same_package_imports(module: ModuleType) -> set[str]:
    """Modules of the same top-level package that ``module``'s globals come from (one level)."""
    top = module.__name__.split(".")[0]
    out = set()
    for value in vars(module).values():
        name = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
        if isinstance(name, str) and name.split(".")[0] == top and name != module.__name__ and name in sys.modules:
            out.add(name)
    return out


def _module_digest(module: ModuleType) -> str:
    """:func:`code_fingerprint` of the module file as it is on disk now (memoised on size and mtime;
    ``inspect`` would serve a stale linecache copy of an edited file)."""
    path = getattr(module, "__file__", None)
    if path and path.endswith(".py") and os.path.isfile(path):
        stat = os.stat(path)
        return _file_fingerprint(path, stat.st_size, stat.st_mtime_ns)
    try:
        return code_fingerprint(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):  # no source (built in, frozen, a REPL class): its name is all we have
        return hashlib.sha256(repr(module).encode()).hexdigest()


@lru_cache(maxsize=4096)
def _file_fingerprint(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as fh:
        source = fh.read()
    try:
        return code_fingerprint(source.decode("utf-8"))
    except (UnicodeDecodeError, SyntaxError):
        return hashlib.sha256(source).hexdigest()


def code_fingerprint(source: str) -> str:
    """sha256 of what Python code computes: its syntax tree without docstrings (and other bare strings),
    comments or formatting, and without the messages of ``raise`` statements and logging or warning calls.

    Why: a cell id must change when the code a result runs through changes, and only then; rewording an
    error message or a docstring must not throw a user's embeddings and synthetic images away."""
    tree = _Computation().visit(ast.parse(source))
    return hashlib.sha256(ast.dump(tree, annotate_fields=False, include_attributes=False).encode()).hexdigest()


class _Computation(ast.NodeTransformer):
    """Strips from a syntax tree what cannot change a result (see :func:`code_fingerprint`)."""

    MESSAGE_CALLS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical"})
    MESSAGE_OWNERS = frozenset({"logger", "log", "logging", "warnings"})

    def generic_visit(self, node: ast.AST) -> ast.AST:
        node = super().generic_visit(node)
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and all(isinstance(s, ast.stmt) for s in body):
                kept = [s for s in body if not _bare_string(s)]
                setattr(node, name, kept or ([ast.Pass()] if name == "body" else []))
        return node

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        if isinstance(node.exc, ast.Call):
            node.exc = ast.Call(func=node.exc.func, args=[], keywords=[])
        node.cause = None
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        call = node.value
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in self.MESSAGE_CALLS
                and isinstance(call.func.value, ast.Name) and call.func.value.id in self.MESSAGE_OWNERS):
            return ast.Expr(ast.Call(func=call.func, args=[], keywords=[]))
        return self.generic_visit(node)


def _bare_string(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def cell_id(dataset: str, task: str, backbone: Any, augmenter: Any, head: Any, protocol: dict) -> str:
    """Stable id of one cell. ``dataset`` is the dataset's identity digest including its data
    fingerprint; plugins are :class:`PluginIdentity` digests, or fixed names for dummy cells."""
    return config_hash({"dataset": dataset, "task": task, "backbone": _digest(backbone),
                        "augmenter": _digest(augmenter), "head": _digest(head), "protocol": protocol,
                        "core": core_digest()})


def _digest(plugin: Any) -> str:
    return plugin if isinstance(plugin, str) else plugin.identity.digest


def embedding_key(backbone: Any) -> str:
    """Folder of a backbone's entries in the embedding cache: its whole identity."""
    return backbone.identity.digest[:24]


def augmentation_key(augmenter: Any, **item: Any) -> str:
    """Cache key of one synthetic image: the augmenter's identity without its ``selection_params``, plus what
    picks the image (source content, seed, index, drawn settings)."""
    identity = augmenter.identity
    selection = getattr(type(augmenter), "selection_params", frozenset())
    image_identity = identity.model_copy(update={"params": {k: v for k, v in identity.params.items()
                                                            if k not in selection}})
    return config_hash({"augmenter": image_identity.digest, **item}, 32)
