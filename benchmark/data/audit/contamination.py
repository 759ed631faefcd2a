"""May a backbone have seen the evaluation images during pretraining? One answer per (dataset, backbone).

Dataset plugins say what their images are in ``meta.source``, backbones what they were pretrained on in
``meta.pretraining_data``; both name collections of one shipped table (``collections.yaml``: known public
dermatology collections and the large general ones, with their aliases and which holds which). A score of
a backbone that saw the test images measures memory, not transfer, so the leaderboard prints the answer
beside every score: ``yes`` (a pretraining collection is, holds or lies inside a source), ``possible``
(a pretraining collection may share images with a source by its own description, or is a web crawl and the
source is on the public web), ``no`` (every pretraining collection is known and none of these holds, or the
backbone declares no pretraining), ``unknown`` (a side is not declared or not in the table: the honest
default).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from skinbench.api import PluginMeta

YES, POSSIBLE, NO, UNKNOWN = "yes", "possible", "no", "unknown"
CONTAMINATION = (YES, POSSIBLE, NO, UNKNOWN)


class Collection(BaseModel):
    """One row of ``collections.yaml``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    aliases: list[str] = []
    includes: list[str] = []
    may_overlap: list[str] = []
    public_web: bool = False
    web_crawl: bool = False
    general: bool = False


@dataclass(frozen=True)
class Verdict:
    value: str
    why: str


@lru_cache(maxsize=1)
def collections() -> dict[str, Collection]:
    """The shipped table, by collection id."""
    text = resources.files(__package__).joinpath("collections.yaml").read_text(encoding="utf-8")
    return {key: Collection(**row) for key, row in yaml.safe_load(text)["collections"].items()}


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    table = collections()
    return {_normal(name): key for key, row in table.items() for name in (key, row.name, *row.aliases)}


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def collection_of(name: str) -> str | None:
    """The table's id of a collection name or alias, None when the table does not know it."""
    return _aliases().get(_normal(name))


def _within(key: str) -> set[str]:
    """``key`` and every collection it holds, transitively."""
    table, seen, todo = collections(), set(), [key]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += table[current].includes
    return seen


def contamination(pretraining: list[str] | None, sources: list[str] | None) -> Verdict:
    """``yes`` / ``possible`` / ``no`` / ``unknown`` for a backbone's pretraining data against a dataset's
    sources (None: not declared), with the reason in words."""
    if not sources:
        return Verdict(UNKNOWN, "the dataset does not declare its source (meta.source)")
    if pretraining is None:
        return Verdict(UNKNOWN, "the backbone does not declare its pretraining data (meta.pretraining_data)")
    if not pretraining:
        return Verdict(NO, "the backbone declares no pretraining data")
    table = collections()
    seen = {name: collection_of(name) for name in pretraining}
    held = {name: collection_of(name) for name in sources}
    known_sources = {key for key in held.values() if key}
    for name, key in seen.items():
        for source in known_sources:
            if key and (source in _within(key) or key in _within(source)):
                return Verdict(YES, f"pretrained on {name}, which overlaps the dataset's source "
                                    f"{table[source].name}")
    for name, key in seen.items():
        if not key:
            continue
        maybe = set().union(*(_within(m) for m in table[key].may_overlap))
        shared = {s for s in known_sources if _within(s) & maybe}
        if shared:
            return Verdict(POSSIBLE, f"pretrained on {name}, which may share images with "
                                     f"{', '.join(table[s].name for s in sorted(shared))}")
        if table[key].web_crawl and any(table[s].public_web for s in known_sources):
            return Verdict(POSSIBLE, f"pretrained on {name}, a crawl of the public web, and the dataset's images "
                                     "are on public web pages")
    unknown = [name for name, key in {**seen, **held}.items() if not key]
    if unknown:
        return Verdict(UNKNOWN, f"not in the table of known collections: {', '.join(unknown)}")
    return Verdict(NO, "no declared pretraining collection overlaps the dataset's source")


def declared_pretraining(meta: PluginMeta) -> list[str] | None:
    """A backbone's ``pretraining_data``, or None when its meta leaves the field out (not the same as ``[]``:
    no pretraining at all)."""
    return list(meta.pretraining_data) if "pretraining_data" in meta.model_fields_set else None


def contamination_records(datasets: list[Any], backbones: list[Any]) -> list[dict[str, str]]:
    """One record per (dataset, backbone) of a suite: labels, value and why (audit.json's ``contamination``)."""
    records = []
    for ds in datasets:
        sources = list(ds.plugin.meta.source)
        for backbone in backbones:
            verdict = contamination(declared_pretraining(backbone.meta), sources)
            records.append({"dataset": ds.label, "backbone": backbone.label, "value": verdict.value,
                            "why": verdict.why})
    return records
