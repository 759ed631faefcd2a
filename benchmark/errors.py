"""The errors a user can fix: each names what is wrong and where. The CLI prints them without a traceback and
exits with 2. Importable from ``skinbench.api`` and ``skinbench.sdk`` too."""
from __future__ import annotations

from typing import Sequence


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
