"""The vision-language part of the plugin contract: the text capability of a backbone and what a
text-reading head is told about a task. Re-exported by :mod:`skinbench.api` and :mod:`skinbench.sdk`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextBackbone(Protocol):
    """Optional capability of vision-language backbones, for heads that read class names (``needs_text``).

    ``embed_text(texts)`` returns float32 (len(texts), dim) text embeddings in the space of the
    backbone's image embeddings (CLIP's ``encode_text``, unnormalised); ``logit_scale()`` is the
    model's learned inverse temperature (CLIP's ``exp(logit_scale)``), which turns cosine
    similarities into logits. Both towers, the tokenizer and the preprocessing belong in the
    backbone's :meth:`~Plugin.artefacts`: the text side changes a head's results too.
    """

    def embed_text(self, texts: list[str]) -> np.ndarray: ...

    def logit_scale(self) -> float: ...


@dataclass(frozen=True)
class ClassNames:
    """What a text-reading head needs to find its prompts: the dataset plugin, the task and its
    classes as label keys (:func:`label_key`), in the order of the label indices."""

    dataset: str
    task: str
    classes: tuple[str, ...]

    @classmethod
    def of(cls, task) -> "ClassNames":
        from skinbench.api import label_key

        return cls(task.dataset, task.name, tuple(label_key(c) for c in task.classes))
