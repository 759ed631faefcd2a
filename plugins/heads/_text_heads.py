"""What the heads that read class names share (``zero-shot``, ``text-init``): the prompt file in the
identity, the preflight's check that every task has prompts, and the class embeddings of a task.
Leading underscore: not a plugin module."""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field
from skinbench.sdk import (
    ClassNames,
    ConfigError,
    Head,
    PluginError,
    PluginParams,
    TextBackbone,
    class_embeddings,
    prompts_digest,
    read_prompts,
)


class TextHeadParams(PluginParams):
    prompts: str | None = Field(None, description="a class prompt file (YAML, docs/vision_language.md); default the "
                                                  "file skinbench ships for the dataset")


class TextHead(Head):
    """Base of heads built on a vision-language backbone's class text embeddings."""

    needs_text = True

    def artefacts(self) -> dict[str, Any]:
        """The prompt files' content: editing a prompt makes new cells."""
        return {"prompts": prompts_digest(self.config["prompts"])}

    def class_problems(self, classes: ClassNames) -> list[str]:
        try:
            read_prompts(self.config["prompts"], classes, self.label)
        except ConfigError as exc:
            return [str(exc)]
        return []

    def text_prior(self, backbone: Any, classes: ClassNames | None) -> tuple[np.ndarray, float]:
        """(K, dim) unit class embeddings of the task's prompts and the backbone's logit scale."""
        if not isinstance(backbone, TextBackbone) or classes is None:
            what = "no backbone" if backbone is None else f"backbone '{backbone.label}'"
            raise PluginError(f"head '{self.label}' needs a backbone with embed_text (open-clip, hf-clip) and the "
                              f"task's class names; got {what}")
        return class_embeddings(backbone, read_prompts(self.config["prompts"], classes, self.label)), \
            float(backbone.logit_scale())
