"""The contracts between the core and its plugins.

A plugin is a class with a ``name``, a ``kind``, typed ``Params`` (every parameter it
accepts, with defaults, types, ranges and choices), ``meta`` (version, licence, citation,
pretraining data) and the parameters that are only ``runtime_params``. The suite
instantiates it with parameter overrides; a wrong type or an unknown parameter is an
error that names the key and lists the known ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import (
    Any,
    ClassVar,
    Protocol,
    Sequence,
    Union,
    get_args,
    get_origin,
    runtime_checkable,
)

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)

from skinbench.errors import ConfigError, DataError, PluginError, SkinbenchError  # noqa: F401 - part of the contract
from skinbench.text_api import ClassNames, TextBackbone  # noqa: F401 - part of the contract

SAMPLE_COLUMNS = ("image", "label", "group")
"""Columns every task table has: image path, label value, group (patient) id."""

SUBGROUP_COLUMNS = ("region", "skin_tone", "sex", "age")
"""Metadata kept with every prediction, for subgroup (fairness) breakdowns."""


class PluginParams(BaseModel):
    """Base of every plugin's typed parameters.

    Unknown keys are errors, types are strict (``"0.2"`` is not a number, ``2.5`` is not an
    integer), and a lone value where a list is declared becomes a one-item list, so
    ``label_columns: label`` means ``[label]`` rather than five letters.
    """

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False, protected_namespaces=())

    @field_validator("*", mode="before")
    @classmethod
    def _one_item_list(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name)
        if field is not None and isinstance(value, (str, int, float, dict)) and not isinstance(value, bool) \
                and _declares_list(field.annotation) and not _accepts(field.annotation, type(value)):
            return [value]
        return value


def _declares_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if annotation in (list, tuple) or origin in (list, tuple):
        return True
    return any(_declares_list(a) for a in get_args(annotation)) if origin in (Union, UnionType) else False


def _accepts(annotation: Any, kind: type) -> bool:
    """Whether a union annotation already admits a scalar of ``kind`` (e.g. ``str | list[str]``)."""
    if annotation is kind or annotation is Any:
        return True
    if get_origin(annotation) in (Union, UnionType):
        return any(_accepts(a, kind) for a in get_args(annotation))
    return kind is int and annotation is float


class PluginMeta(BaseModel):
    """What a reader of a leaderboard needs to know about a plugin (MTEB-style model metadata).

    ``pretraining_data`` (backbones) and ``source`` (datasets: the collections its images come from)
    name collections of one table (``skinbench/data/audit/collections.yaml``), so the leaderboard can
    flag a backbone that may have seen the evaluation images; ``revision`` pins the weights a preset loads.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    version: str | None = None
    license: str = ""
    citation: str = ""
    pretraining_data: list[str] = []
    source: list[str] = []
    revision: str | None = None
    n_parameters: int | None = None
    homepage: str = ""
    url: str = ""
    notes: str = ""


def params_model(plugin_name: str, defaults: dict[str, Any], base: type[PluginParams] = PluginParams) -> type[PluginParams]:
    """A typed parameter model inferred from a dict of defaults (for plugins that declare ``params`` as a dict).

    Each parameter takes the type of its default or ``None`` (ints are accepted for floats);
    a ``None`` default accepts anything. Declaring a :class:`PluginParams` subclass gives ranges and choices too."""
    fields: dict[str, Any] = {}
    for key, default in defaults.items():
        inferred = _inferred_type(default)
        fields[key] = (inferred if inferred is Any else inferred | None, default)
    return create_model(f"{plugin_name or 'Plugin'}Params".replace("-", "_"), __base__=base, **fields)


def _inferred_type(default: Any) -> Any:
    if default is None:
        return Any
    if isinstance(default, bool):
        return bool
    if isinstance(default, (int, float)):
        return float if isinstance(default, float) else int
    if isinstance(default, str):
        return str
    if isinstance(default, (list, tuple)):
        return list
    if isinstance(default, dict):
        return dict
    return Any


class Plugin:
    """Base of all plugin kinds. Subclasses set the class attributes below.

    ``Params`` is a :class:`PluginParams` model of every accepted parameter (a plain
    ``params = {name: default}`` dict is turned into one); ``meta`` is a :class:`PluginMeta`
    (a dict is accepted); ``runtime_params`` names the parameters that change how fast a
    result comes and never what it is, so they stay out of the identity.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    Params: ClassVar[type[PluginParams]] = PluginParams
    params: ClassVar[dict[str, Any]] = {}
    meta: ClassVar[PluginMeta] = PluginMeta()
    runtime_params: ClassVar[frozenset[str]] = frozenset({"progress"})
    transient: ClassVar[tuple[str, ...]] = ()
    """Attributes built on first use (a loaded network, an open file) that are reset to ``None`` when the
    plugin is pickled for a Dask worker, which builds its own."""
    code_modules: ClassVar[tuple[str, ...]] = ()
    """Extra modules whose source changes this plugin's results (its own module, its base
    classes' modules and the modules they import from the same package are found automatically)."""

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "Params" not in own and isinstance(own.get("params"), dict):
            base = next((c.Params for c in cls.__mro__[1:] if issubclass(c.Params, PluginParams)), PluginParams)
            cls.Params = params_model(cls.name, own["params"], base if base is not PluginParams else PluginParams)
        cls.params = {k: f.get_default(call_default_factory=True) for k, f in cls.Params.model_fields.items()}
        if isinstance(own.get("meta"), dict):
            cls.meta = PluginMeta(**own["meta"])

    def __init__(self, **overrides: Any):
        try:
            validated = self.Params.model_validate(overrides)
        except ValidationError as exc:
            raise ConfigError(params_error(self.kind, self.name, exc, self.Params)) from None
        self.config: dict[str, Any] = validated.model_dump()
        self._identity = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self.transient:
            if name in state:
                state[name] = None
        return state

    def artefacts(self) -> dict[str, Any]:
        """What the parameters resolve to on this machine that can change results.

        The weights file's sha256 (or the hub repo, revision and file hash), a model folder's
        fingerprint, a prompt file's digest, the precision and device type actually used.
        Called once by the core before anything is computed (``skinbench validate`` calls it
        too): raise :class:`ConfigError` naming the plugin when something does not resolve.
        """
        return {}

    @property
    def identity(self) -> "PluginIdentity":  # noqa: F821 - skinbench.record.identity imports this module
        """The one resolved identity (name, package, version, code digest, params, artefacts)
        from which cell ids and every cache key derive; resolved once, on first use."""
        if getattr(self, "_identity", None) is None:
            from skinbench.record.identity import resolve_identity

            self._identity = resolve_identity(self)
        return self._identity

    @property
    def label(self) -> str:
        """Display name: the plugin name plus every parameter that differs from its default."""
        changed = {k: v for k, v in self.config.items() if self.params.get(k) != v and k not in self.runtime_params}
        if not changed:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in sorted(changed.items())) + ")"


from skinbench.configuration.messages import did_you_mean, key_path, params_error, validation_lines  # noqa: E402,F401 - kept importable


def label_key(value: Any) -> str:
    """A label as text, the way prompt files and pages key it: -1, -1.0 and "-1" are all "-1"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else str(value)


@dataclass
class Task:
    """One classification problem: a table of samples and its declared classes.

    ``samples`` has at least :data:`SAMPLE_COLUMNS`; ``image`` is a path string,
    ``label`` a value in ``classes``, ``group`` the patient id used for every split.
    Optional columns: ``stratum`` (the label Algorithm 1 bins on, e.g. before a label map;
    defaults to ``label``), :data:`SUBGROUP_COLUMNS`, and ``split`` (train/test) for a
    published split named by ``protocol.split_column``.
    """

    dataset: str
    name: str
    classes: list
    samples: pd.DataFrame
    ordinal: bool = False
    description: str = ""
    origins: list[str] | None = None
    """Where each sample's row came from (``file line N``), for messages; None for generated data."""
    left_out: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    """Rows a documented rule left out of the task (e.g. an empty label): reason -> (count, the first few
    ``file line N`` where known), so the preflight and the leaderboard can say so."""

    def where(self, row: int) -> str:
        """The row's source for a message: its file and line when known, else dataset, task and row."""
        if self.origins is not None and 0 <= row < len(self.origins):
            return self.origins[row]
        return f"dataset '{self.dataset}', task '{self.name}', row {row}"

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def encode(self, labels: Sequence) -> np.ndarray:
        """Map label values to indices 0..K-1 in the order of ``classes``."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[v] for v in labels], dtype=np.int64)


@dataclass
class Part:
    """The samples a head sees for one of train / validation / test.

    ``x`` holds embeddings (rows aligned with ``paths``) for embedding heads and
    is ``None`` for heads that need images; ``y`` is label indices.
    """

    paths: list[str]
    y: np.ndarray
    groups: np.ndarray
    x: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class Prediction:
    """Class probabilities (n, K) and the decided label indices (n,)."""

    proba: np.ndarray
    labels: np.ndarray


class Dataset(Plugin):
    kind = "dataset"

    def tasks(self) -> list[Task]:
        """Load and return every task. Collect problems and raise :class:`DataError` once."""
        raise NotImplementedError

    def split_table(self, tasks: list[Task]) -> pd.DataFrame:
        """The labelled images the test split is chosen from: columns ``image``, ``group``, ``task``, ``stratum``.

        The split belongs to the data: it must not change with the tasks a suite selects or with
        label maps. The default takes every row of every task, binned on its ``stratum`` (the raw
        label before any label map). Override it when a parameter can hide labels the data has."""
        return pd.concat([t.samples.assign(task=t.name, stratum=t.samples["stratum"] if "stratum" in t.samples
                                           else t.samples["label"])[["image", "group", "task", "stratum"]]
                          for t in tasks], ignore_index=True)


class Backbone(Plugin):
    """Turns images into embeddings.

    The core batches, caches (by image content and :attr:`identity`) and
    calls :meth:`embed` only for images it has not seen. Batch size, workers and the
    requested device and precision are runtime parameters: a backbone whose results depend
    on the device or precision reports what it actually uses in :meth:`artefacts`.
    """

    kind = "backbone"
    runtime_params = frozenset({"device", "precision", "batch_size", "num_workers", "progress"})

    def embed(self, images: list["PIL.Image.Image"]) -> np.ndarray:  # noqa: F821
        """Return float32 embeddings of shape (len(images), dim)."""
        raise NotImplementedError

    def embed_paths(self, paths: list[str]) -> np.ndarray | None:
        """Optional: embed image *files* (rows aligned with ``paths``), or return None to get
        decoded images through :meth:`embed` instead. Backbones override this when they need
        the path (precomputed embeddings) or decode in parallel (DataLoader workers)."""
        return None


@runtime_checkable
class TrainableBackbone(Protocol):
    """Optional method set of torch backbones, for heads that fine-tune.

    ``torch_module()`` returns a fresh trainable copy of the network mapping a normalised
    batch (B, 3, H, W) to pooled features (B, ``feature_dim``), pooled as :meth:`Backbone.embed`
    does; changing it never alters the backbone's embeddings. ``data_config()`` is timm-style:
    ``input_size``, ``mean``, ``std``, ``interpolation``, ``crop_pct``.
    """

    feature_dim: int

    def torch_module(self) -> "torch.nn.Module": ...  # noqa: F821

    def data_config(self) -> dict[str, Any]: ...


class Augmenter(Plugin):
    """Adds synthetic training rows for one task."""

    kind = "augmenter"
    selection_params: ClassVar[frozenset[str]] = frozenset()
    """Parameters that decide which images are made or kept (how many per class, which pass quality
    control) but never what one image looks like once its source, seed and settings are fixed. They are
    in the identity, hence in cell ids, but not in :func:`skinbench.record.identity.augmentation_key`, so raising
    ``amount`` or a QC threshold reuses every image already generated."""

    def augment(self, train: pd.DataFrame, task: Task, seed: int, workdir: Path) -> pd.DataFrame:
        """Return *new* rows only (same columns as ``train``, ``image`` pointing at files
        written under ``workdir``), each with ``source`` (the real image it came from),
        ``synthetic=True`` and the source's ``group``. Return an empty frame for none."""
        raise NotImplementedError


class Head(Plugin):
    """A classifier fitted per cell and seed.

    ``needs_images = False`` heads get embeddings in ``Part.x``; ``True`` heads get
    ``Part.x = None`` and the backbone object, for fine-tuning. ``needs_text = True`` heads
    (zero-shot, text-initialised) get the backbone too, which must be a :class:`TextBackbone`
    (the preflight refuses any other pairing), and ``fit(..., classes=ClassNames)`` so they can
    write their class prompts.
    """

    kind = "head"
    needs_images: ClassVar[bool] = False
    needs_text: ClassVar[bool] = False

    @property
    def labelled_images(self) -> str:
        """Which labelled images the fitted head has seen: ``training`` (the default), ``validation``
        (only to calibrate, e.g. a zero-shot head's temperature) or ``none``. Leaderboards mark the last
        two "no labelled training images"."""
        return "training"

    def class_problems(self, classes: ClassNames) -> list[str]:
        """What keeps this head from running on a task (a text head without prompts for its classes),
        each naming the head, the task and the fix; checked by the preflight for every task."""
        return []

    def fit(self, train: Part, val: Part, n_classes: int, seed: int, backbone: Backbone | None = None) -> None:
        raise NotImplementedError

    def predict(self, part: Part) -> Prediction:
        raise NotImplementedError


PLUGIN_KINDS = {"backbone": Backbone, "augmenter": Augmenter, "head": Head, "dataset": Dataset}
