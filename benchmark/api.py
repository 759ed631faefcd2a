"""The contracts between the core and its plugins.

A plugin is a class with a ``name``, a ``kind``, ``params`` (the defaults of
every parameter it accepts) and ``meta`` (version, licence, citation,
pretraining data). The suite instantiates it with parameter overrides; an
unknown parameter is an error that lists the known ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd

SAMPLE_COLUMNS = ("image", "label", "group")
"""Columns every task table has: image path, label value, group (patient) id."""

SUBGROUP_COLUMNS = ("region", "skin_tone", "sex", "age")
"""Metadata kept with every prediction, for subgroup (fairness) breakdowns."""


class SkinbenchError(Exception):
    """An error a user can fix; the message says what and where."""


class ConfigError(SkinbenchError):
    """The suite names something that does not exist or is malformed."""


class DataError(SkinbenchError):
    """One or more problems in a dataset; ``problems`` lists every one found."""

    def __init__(self, problems: Sequence[str] | str):
        # A single string is one problem: this is also how pickling (DataLoader workers) rebuilds the error.
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(f"- {p}" for p in self.problems))


class PluginError(SkinbenchError):
    """A plugin failed inside one cell; the runner records it and moves on."""


class Plugin:
    """Base of all plugin kinds. Subclasses set the class attributes below."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    meta: ClassVar[dict[str, Any]] = {}

    def __init__(self, **overrides: Any):
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            known = ", ".join(sorted(self.params)) or "(none)"
            raise ConfigError(
                f"{self.kind} '{self.name}' has no parameter(s) {', '.join(unknown)}; known: {known}"
            )
        self.config: dict[str, Any] = {**self.params, **overrides}

    runtime_params: ClassVar[frozenset[str]] = frozenset({"device", "precision", "batch_size", "num_workers", "progress"})
    """Parameters that change how fast a result comes, not what it is: left out of :meth:`identity`."""

    def identity(self) -> dict[str, Any]:
        """Everything that changes this plugin's output. Hashed into cell ids and cache keys."""
        return {"name": self.name, "params": {k: v for k, v in self.config.items() if k not in self.runtime_params}}

    @property
    def label(self) -> str:
        """Display name: the plugin name plus every parameter that differs from its default."""
        changed = {k: v for k, v in self.config.items() if self.params.get(k) != v and k not in self.runtime_params}
        if not changed:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in sorted(changed.items())) + ")"


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


class Backbone(Plugin):
    """Turns images into embeddings.

    The core batches, caches (by image content and :meth:`identity`) and
    calls :meth:`embed` only for images it has not seen.
    """

    kind = "backbone"

    def embed(self, images: list["PIL.Image.Image"]) -> np.ndarray:  # noqa: F821
        """Return float32 embeddings of shape (len(images), dim)."""
        raise NotImplementedError

    def embedding_identity(self) -> dict[str, Any]:
        """What makes two embeddings of the same image equal: defaults to :meth:`identity`.
        Weight-loading backbones add the weights file hash or hub revision here."""
        return self.identity()

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

    def augment(self, train: pd.DataFrame, task: Task, seed: int, workdir: Path) -> pd.DataFrame:
        """Return *new* rows only (same columns as ``train``, ``image`` pointing at files
        written under ``workdir``), each with ``source`` (the real image it came from),
        ``synthetic=True`` and the source's ``group``. Return an empty frame for none."""
        raise NotImplementedError


class Head(Plugin):
    """A classifier fitted per cell and seed.

    ``needs_images = False`` heads get embeddings in ``Part.x``; ``True`` heads get
    ``Part.x = None`` and the backbone object, for fine-tuning.
    """

    kind = "head"
    needs_images: ClassVar[bool] = False

    def fit(self, train: Part, val: Part, n_classes: int, seed: int, backbone: Backbone | None = None) -> None:
        raise NotImplementedError

    def predict(self, part: Part) -> Prediction:
        raise NotImplementedError


PLUGIN_KINDS = {"backbone": Backbone, "augmenter": Augmenter, "head": Head, "dataset": Dataset}
