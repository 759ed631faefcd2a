"""Prompts of the Stable Diffusion augmenters: an editable YAML file of per-task class descriptors.

See ``benchmark/prompts/cosmetic.yaml`` for the format (thesis appendix A.3): a generic
template, and per task a base prompt, class descriptors (and ``merged`` ones for datasets that
merge classes), additions and a negative prompt. Prompts are trimmed to what the text
encoder sees (75 tokens for SD v1.5), and the trimmed text is logged with every image.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from skinbench.sdk import config_hash, ConfigError, label_key, read_yaml_mapping

SHIPPED_PROMPTS = "prompts/cosmetic.yaml"


@dataclass(frozen=True)
class Prompt:
    positive: str
    negative: str


class PromptBook:
    """Per-task base prompt, class descriptors, additions and negatives (see cosmetic.yaml)."""

    def __init__(self, data: dict, origin: str):
        self.origin = origin
        self.digest = config_hash(data)
        try:
            self.negative_base = str(data.get("negative_base", ""))
            self.generic = dict(data["generic"])
            self.tasks = {str(k): dict(v) for k, v in (data.get("tasks") or {}).items()}
            for entry in self.tasks.values():
                for part in ("classes", "merged"):
                    entry[part] = {label_key(k): str(v) for k, v in (entry.get(part) or {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"prompt file {origin}: needs 'generic' and a 'tasks' mapping ({exc})") from None

    @classmethod
    def load(cls, path: str | Path | None) -> "PromptBook":
        if path is None:
            text = resources.files("skinbench").joinpath(SHIPPED_PROMPTS).read_text(encoding="utf-8")
            return cls(yaml.safe_load(text), f"skinbench/{SHIPPED_PROMPTS}")
        return cls(read_yaml_mapping(path, "a prompt file: a mapping with 'generic' and 'tasks'"), str(path))

    def prompt(self, task: str, label: Any, classes: list | None = None) -> Prompt:
        """Known task: its class descriptor (the ``merged`` one when the dataset declares fewer
        ``classes`` than the file lists), else its fallback. Unknown task: the generic template."""
        key = label_key(label)
        entry = self.tasks.get(task)
        if entry is None:
            entry = self.generic
            descriptor = str(entry.get("descriptor", "{task}: {label}")).format(task=task.replace("_", " "), label=key)
        else:
            merged = classes is not None and len(set(map(label_key, classes))) < len(entry["classes"])
            descriptor = ((merged and entry["merged"].get(key)) or entry["classes"].get(key) or entry.get("fallback")
                          or f"{task.replace('_', ' ')}: {key}")
        positive = ", ".join(p for p in (entry.get("base"), descriptor, entry.get("additions")) if p)
        negative = ", ".join(p for p in (self.negative_base, entry.get("negative")) if p)
        return Prompt(positive.strip(), negative.strip())


def truncate(tokenizer, text: str) -> str:
    """Trim a prompt to what the text encoder sees (75 tokens for SD v1.5, plus start/end)."""
    limit = tokenizer.model_max_length - 2
    ids = tokenizer(text, add_special_tokens=False, truncation=True, max_length=limit + 1).input_ids
    return text if len(ids) <= limit else tokenizer.decode(ids[:limit]).strip()
