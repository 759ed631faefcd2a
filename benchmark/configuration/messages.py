"""Messages about what a user gave: readable pydantic errors, key paths and "did you mean".

Kept apart from the plugin contract (:mod:`skinbench.api`) and out of every code digest
(:mod:`skinbench.record.identity`): rewording a message must not throw a user's caches away.
"""
from __future__ import annotations

import difflib
from typing import Any, Sequence, get_args, get_origin

from pydantic import BaseModel, ValidationError


def params_error(kind: str, name: str, exc: ValidationError, model: type[BaseModel], where: str = "") -> str:
    """One line per problem: the key path, what was expected, what was given, and a suggestion."""
    prefix = where or f"{kind} '{name}'"
    return "\n".join(f"{prefix}: {line}" for line in validation_lines(exc, model))


def validation_lines(exc: ValidationError, model: type[BaseModel] | None = None, root: str = "") -> list[str]:
    """Readable lines for a pydantic error: ``path: expected …, got …`` and "did you mean" for unknown keys."""
    lines = []
    for error in exc.errors():
        path = key_path([root, *error["loc"]]) or "(top level)"
        given = error.get("input")
        if error["type"] == "extra_forbidden":
            known = _known_keys(model, error["loc"][:-1])
            hint = _did_you_mean(str(error["loc"][-1]), known)
            lines.append(f"unknown key '{path}'{hint}; known: {', '.join(sorted(known)) or '(none)'}")
        elif error["type"] == "missing":
            lines.append(f"'{path}' is required")
        else:
            lines.append(f"'{path}': {error['msg'][0].lower() + error['msg'][1:]}, got {given!r} ({type(given).__name__})")
    return lines


def key_path(parts: Sequence[Any]) -> str:
    """``heads[0].params.C_grid`` from ('heads', 0, 'params', 'C_grid'); pydantic's internal tags are dropped."""
    text = ""
    for part in parts:
        if part in ("", None) or (isinstance(part, str) and (part.startswith("function-") or "[" in part)):
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _known_keys(model: type[BaseModel] | None, loc: tuple) -> list[str]:
    """The keys allowed at ``loc``: walk model fields, list items and dict values down the path."""
    annotation: Any = model
    for part in loc:
        inner = _model_in(annotation)
        if inner is not None and isinstance(part, str) and part in inner.model_fields:
            annotation = inner.model_fields[part].annotation
            continue
        containers = [a for a in (annotation, *get_args(annotation)) if get_origin(a) in (dict, list, tuple)]
        annotation = get_args(containers[0])[-1] if containers else None  # an item or a dict value
    inner = _model_in(annotation)
    return list(inner.model_fields) if inner is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation is, or holds in a union (``Model | None``)."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _did_you_mean(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def did_you_mean(word: str, known: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or an empty string."""
    return _did_you_mean(word, known)
