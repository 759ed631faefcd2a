"""Hugging Face hub files and snapshots, resolved from the local cache first and never retried for minutes.

A plugin asks for a repo's file (timm weights) or a repo's revision (a Stable Diffusion
model). What is in the local HF cache resolves with no network at all. What is not fails in
seconds with a :class:`~skinbench.api.ConfigError` naming the plugin when the hub is offline
(``HF_HUB_OFFLINE``) or unreachable (one short connection probe, no retries); only then is
the hub asked for the revision, and the file downloaded and hashed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from skinbench.api import ConfigError
from skinbench.hashing import file_digest

PROBE_TIMEOUT_S = 3.0
"""How long the reachability probe waits: a hub that does not answer in this time is treated as offline."""

OFFLINE_HINT = ("Download it where the hub is reachable (it lands in the Hugging Face cache, $HF_HOME), "
                "or point the plugin at a local copy")


@dataclass(frozen=True)
class HubFile:
    """One resolved hub file: where it is on disk and what it is (commit and content hash)."""

    repo: str
    filename: str
    revision: str
    path: Path

    def identity(self) -> dict[str, str]:
        return {"hub": self.repo, "revision": self.revision, "file": self.filename, "sha256": file_digest(self.path)}


def hub_file(repo: str, filenames: Sequence[str], plugin: str, revision: str | None = None,
             hint: str = OFFLINE_HINT) -> HubFile:
    """The first of ``filenames`` that ``repo`` has: from the cache, else downloaded when the hub is reachable.
    ``hint`` ends the error when it is neither: what the user can do instead."""
    for filename in filenames:
        cached = _cached(repo, filename, revision)
        if cached is not None:
            return HubFile(repo, filename, _commit_of(cached), cached)
    ensure_reachable(plugin, f"'{repo}' ({' or '.join(filenames)})", hint)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    for filename in filenames:
        try:
            path = Path(hf_hub_download(repo, filename, revision=revision, etag_timeout=PROBE_TIMEOUT_S))
        except EntryNotFoundError:
            continue
        except Exception as exc:  # gated or missing repo, bad revision, ... (classes differ across versions)
            raise ConfigError(f"{plugin}: cannot download '{filename}' from '{repo}': {_first_line(exc)}") from None
        return HubFile(repo, filename, _commit_of(path), path)
    raise ConfigError(f"{plugin}: the hub repo '{repo}' has none of {', '.join(filenames)}")


def hub_revision(repo: str, plugin: str, revision: str | None = None, probe: str = "model_index.json",
                 hint: str = OFFLINE_HINT) -> str:
    """The commit ``revision`` (default: main) of ``repo`` points to: from the cache when ``probe`` is
    cached there, else from the hub when it is reachable."""
    cached = _cached(repo, probe, revision)
    if cached is not None:
        return _commit_of(cached)
    ensure_reachable(plugin, f"'{repo}'", hint)
    from huggingface_hub import HfApi

    try:
        return HfApi().model_info(repo, revision=revision, timeout=PROBE_TIMEOUT_S * 3).sha
    except Exception as exc:  # gated, missing, bad revision, ...
        raise ConfigError(f"{plugin}: cannot resolve '{repo}' at revision {revision or 'main'}: "
                          f"{_first_line(exc)}") from None


def hub_snapshot(repo: str, patterns: Sequence[str], plugin: str, revision: str | None = None,
                 hint: str = OFFLINE_HINT) -> Path:
    """The snapshot folder of ``repo`` holding the files that match ``patterns`` (small files: configs,
    tokenizers): from the cache when this revision is there, else downloaded when the hub is reachable."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=list(patterns), local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached: the client's error classes vary across versions
        pass
    ensure_reachable(plugin, f"'{repo}'", hint)
    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=list(patterns),
                                      etag_timeout=PROBE_TIMEOUT_S))
    except Exception as exc:  # gated or missing repo, bad revision, ...
        raise ConfigError(f"{plugin}: cannot download '{repo}' at revision {revision or 'main'}: "
                          f"{_first_line(exc)}") from None


def ensure_reachable(plugin: str, wanted: str, hint: str = OFFLINE_HINT) -> None:
    """Raise at once when the hub is offline or does not answer within :data:`PROBE_TIMEOUT_S`."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        raise ConfigError(f"{plugin}: {wanted} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) "
                          f"and HF_HUB_OFFLINE is set. {hint}.")
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=PROBE_TIMEOUT_S)
    except Exception as exc:  # DNS failure, refused, timeout, proxy error: the client's classes vary
        raise ConfigError(f"{plugin}: {wanted} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) "
                          f"and the hub ({constants.ENDPOINT}) is unreachable: {_first_line(exc)}. {hint}.") from None


def _cached(repo: str, filename: str, revision: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, revision=revision)
    return Path(found) if isinstance(found, str) else None


def _commit_of(path: Path) -> str:
    """The commit a cached file belongs to: its ``snapshots/<commit>/`` folder."""
    parts = Path(path).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else "unknown"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0]}" if text else exc.__class__.__name__
