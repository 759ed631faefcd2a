"""Patient groups across a whole dataset: identical image bytes join their groups.

Two rows holding the same photo under different patient ids would otherwise land on both
sides of a split, and a test image would be seen in training. The core applies this to
every dataset plugin (not each reader on its own), over every task at once, and reports each
join as a warning naming the files.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from skinbench.hashing import file_digests


def linked_groups(groups: pd.Series, *links: pd.Series) -> pd.Series:
    """Group ids after joining every pair of groups that share a non-empty link value.

    Links are e.g. image content digests or source URLs. Connected components over the
    bipartite graph (group, link value) is the union-find. A merged group is named by its
    smallest member id, so names do not depend on row order."""
    nodes: dict[tuple, int] = {}

    def node(key: tuple) -> int:
        return nodes.setdefault(key, len(nodes))

    group_nodes = [node(("group", g)) for g in groups]
    edges = [(g, node((k, value)))
             for k, link in enumerate(links)
             for g, value in zip(group_nodes, link) if isinstance(value, str) and value]
    rows, cols = zip(*edges) if edges else ((), ())
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(nodes), len(nodes)))
    _, component = connected_components(graph, directed=False)
    row_component = pd.Series(component[group_nodes], index=groups.index)
    smallest = groups.groupby(row_component).transform("min")
    return smallest.astype(str)


def identical_image_groups(images: pd.Series, groups: pd.Series) -> tuple[dict[str, str], list[str]]:
    """Map every group id to its joined group, and one warning per join listing the shared files.

    ``images`` and ``groups`` are aligned rows from every task of one dataset."""
    frame = pd.DataFrame({"image": images.astype(str).to_numpy(), "group": groups.astype(str).to_numpy()})
    frame["digest"] = file_digests(frame["image"])
    joined = linked_groups(frame["group"], frame["digest"])
    mapping = dict(zip(frame["group"], joined))
    shared = frame.groupby("digest", sort=False)["group"].nunique()
    warnings = []
    for digest in shared.index[shared > 1]:
        rows = frame[frame["digest"] == digest]
        members, files = sorted(set(rows["group"])), sorted(set(rows["image"]))
        warnings.append(f"identical image bytes under patients {members} were joined into patient "
                        f"'{mapping[members[0]]}': {', '.join(files[:5])}{' …' if len(files) > 5 else ''}")
    return mapping, warnings
