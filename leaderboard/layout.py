"""What a leaderboard is made of before it is rendered: titled tables of formatted text, in sections."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Table:
    """One displayable table: every cell is already a formatted string."""

    title: str
    caption: str
    frame: pd.DataFrame


@dataclass
class Section:
    title: str
    tables: list[Table] = field(default_factory=list)


@dataclass
class Report:
    """What a leaderboard renders: its sections, its warnings, and the tidy frame behind ``--format csv``."""

    sections: list[Section]
    warnings: list[str]
    frame: pd.DataFrame


def flat_keys(mapping: dict, prefix: str = "") -> dict[str, object]:
    """``{"weights": {"sha256": …}}`` as ``{"weights.sha256": …}``: one line per resolved artefact."""
    out: dict[str, object] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            out.update(flat_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
