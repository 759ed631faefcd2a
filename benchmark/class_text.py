"""Class prompts for vision-language heads: prompt files, and class embeddings built from them.

A prompt file (YAML) holds templates and, per task, descriptions of each class::

    templates: ["a clinical photograph of {}.", "a close-up photo of {} on human skin."]
    tasks:
      moisture:
        templates: [...]          # optional: replaces the file's templates for this task
        unlisted: name            # optional: a class not listed is described by its own label
        classes:
          "-1": [dehydrated skin, dry skin with fine lines]
          "0": [hydrated skin]

Class keys are label values as text (:func:`skinbench.api.label_key`). skinbench ships one
file per dataset plugin in ``skinbench/class_prompts/<dataset>.yaml``; a suite can name its own.
A class embedding is the mean of the normalised text embeddings of every template × description,
normalised again: open_clip's ``build_zero_shot_classifier`` (Ilharco et al., OpenCLIP), which
follows the prompt ensembling of Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision" (ICML 2021).
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from skinbench.api import ClassNames, ConfigError, TextBackbone
from skinbench.hashing import file_digest

SHIPPED = "class_prompts"
"""Package folder of the shipped prompt files, one per dataset plugin."""


@dataclass(frozen=True)
class ClassPrompts:
    """The texts of one task: for each class (in label-index order) every template × description."""

    texts: tuple[tuple[str, ...], ...]


def shipped_files() -> dict[str, Path]:
    """Dataset plugin name -> its shipped prompt file."""
    folder = resources.files("skinbench").joinpath(SHIPPED)
    return {Path(str(f)).stem: Path(str(f)) for f in folder.iterdir() if str(f).endswith(".yaml")}


def prompt_source(path: str | None, classes: ClassNames) -> Path | None:
    """The file a task's prompts come from: the suite's own, else the dataset's shipped one (None: no file)."""
    return Path(path).expanduser() if path else shipped_files().get(classes.dataset)


def prompts_digest(path: str | None) -> dict[str, str]:
    """What enters a head's identity: the sha256 of its own file, or of every shipped file."""
    if path:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"prompt file {file} does not exist; give the path of a YAML prompt file")
        return {file.name: file_digest(file)}
    return {f"{SHIPPED}/{name}.yaml": file_digest(file) for name, file in sorted(shipped_files().items())}


def read_prompts(path: str | None, classes: ClassNames, head: str) -> ClassPrompts:
    """The prompts of one task, or a :class:`ConfigError` naming the head, the file, the task and the fix."""
    source = prompt_source(path, classes)
    where = f"head '{head}', dataset '{classes.dataset}', task '{classes.task}'"
    if source is None:
        raise ConfigError(f"{where}: skinbench ships no class prompts for dataset '{classes.dataset}' (it has: "
                          f"{', '.join(sorted(shipped_files()))}); write a prompt file (docs/vision_language.md) "
                          "and set the head's 'prompts' to its path")
    book = _read_mapping(source, where)
    entry = (book.get("tasks") or {}).get(classes.task)
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: {source} has no task '{classes.task}' under 'tasks' (it has: "
                          f"{', '.join(map(str, book.get('tasks') or {})) or 'none'}); add it or point 'prompts' "
                          "at another file")
    templates = _strings(entry.get("templates", book.get("templates")), f"{source}: templates of '{classes.task}'")
    described = {str(k): v for k, v in (entry.get("classes") or {}).items()}
    if entry.get("unlisted") == "name":
        described = {c: c for c in classes.classes} | described
    missing = [c for c in classes.classes if c not in described]
    if missing:
        raise ConfigError(f"{where}: {source} describes no class {missing} of task '{classes.task}' (classes "
                          f"{list(classes.classes)}; a label map may have renamed them); add a description for each")
    texts = []
    for c in classes.classes:
        descriptions = _strings(described[c], f"{source}: task '{classes.task}' class '{c}'")
        texts.append(tuple(_filled(t, d, source) for d in descriptions for t in templates))
    return ClassPrompts(tuple(texts))


def class_embeddings(backbone: TextBackbone, prompts: ClassPrompts) -> np.ndarray:
    """(K, dim) unit class embeddings: per class the normalised mean of its normalised text embeddings."""
    flat = [text for texts in prompts.texts for text in texts]
    vectors = unit_rows(np.asarray(backbone.embed_text(flat), dtype=np.float64))
    bounds = np.cumsum([0, *(len(texts) for texts in prompts.texts)])
    return unit_rows(np.stack([vectors[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])]))


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _read_mapping(path: Path, where: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{where}: prompt file {path} does not exist")
    try:
        book = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: {path} is not valid YAML ({exc})") from None
    if not isinstance(book, dict):
        raise ConfigError(f"{where}: {path} must be a mapping with 'templates' and 'tasks'")
    return book


def _strings(value: Any, where: str) -> list[str]:
    """A string or a non-empty list of strings, as a list."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise ConfigError(f"{where}: expected a text or a non-empty list of texts, got {value!r}")
    return items


def _filled(template: str, description: str, source: Path) -> str:
    if "{}" not in template:
        raise ConfigError(f"{source}: template {template!r} has no '{{}}' where the class description goes")
    return template.replace("{}", description)
