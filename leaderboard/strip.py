"""Real-vs-synthetic strip (thesis Figure 4.6) from a run's generation log."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image
from skinbench.api import DataError, SkinbenchError
from skinbench.images import load_rgb

from .figures import plain_text

STRIP_TITLE = "Real training images and the synthetic images made from them"
TILE, GAP, LABEL = 96, 18, 26      # pixels: image side, space between pairs, class-name band above a row
PAIR, ROW = 2 * TILE + 4 + GAP, TILE + LABEL + 8
DPI, LEFT = 100, 1.3               # LEFT: inches for the task labels


def pick_examples(log: pd.DataFrame, per_task: int) -> dict[tuple[str, str], pd.DataFrame]:
    """Up to ``per_task`` kept images per (task, augmenter), cycling over classes so every class shows."""
    if "kept" in log:
        log = log[log["kept"].astype(str).isin(["True", "true", "1"])]
    if "augmenter" not in log:
        log = log.assign(augmenter="")
    picked = {}
    for (task, augmenter), rows in log.groupby(["task", "augmenter"], sort=True):
        by_class = [group.reset_index(drop=True) for _, group in rows.groupby("label", sort=True)]
        order = [frame.iloc[i] for i in range(per_task) for frame in by_class if i < len(frame)]
        picked[(str(task), str(augmenter))] = pd.DataFrame(order[:per_task])
    return picked


@plain_text
def synthetic_strip(generation_log: pd.DataFrame | str | Path, out_png: str | Path, per_task: int = 4,
                    class_names: dict[str, dict[str, str]] | None = None, title: str = STRIP_TITLE) -> Path:
    """One row per task and augmenter of (real, synthetic) pairs, each pair under its class name.

    ``class_names`` maps task → class code (as text) → readable name; codes without a name are
    shown as ``class <code>``. Raises :class:`SkinbenchError` when there is nothing to show or an
    image is no longer readable (e.g. the augmentation cache was cleared).
    """
    log = generation_log if isinstance(generation_log, pd.DataFrame) else pd.read_csv(generation_log, dtype=str)
    picked = pick_examples(log.astype(str), per_task)
    if not picked:
        raise SkinbenchError("the generation log has no kept synthetic image to show")
    pairs = max(len(rows) for rows in picked.values())
    # one mosaic in one axes: a grid of many axes costs seconds of layout per strip
    canvas = np.full((len(picked) * ROW, pairs * PAIR - GAP, 3), 255, np.uint8)
    figure = Figure(figsize=(LEFT + canvas.shape[1] / DPI, 0.35 + canvas.shape[0] / DPI), dpi=DPI)
    axes = figure.add_axes((LEFT / figure.get_figwidth(), 0, 1 - LEFT / figure.get_figwidth(),
                            canvas.shape[0] / DPI / figure.get_figheight()))
    labels = []
    for r, ((task, augmenter), rows) in enumerate(picked.items()):
        top = r * ROW + LABEL
        labels.append((-8, top + TILE / 2, f"{task}\n({augmenter})" if augmenter else task, "right"))
        names = (class_names or {}).get(task, {})
        for c, (_, row) in enumerate(rows.iterrows()):
            left = c * PAIR
            for k, path in enumerate((row["source"], row["image"])):
                x = left + k * (TILE + 4)
                canvas[top:top + TILE, x:x + TILE] = np.asarray(_image(path).resize((TILE, TILE)))
            name = names.get(str(row["label"])) or f"class {row['label']}"
            labels.append((left + TILE + 2, top - 3, "\n".join(textwrap.wrap(name, 32)[:2]), "center"))
    axes.imshow(canvas, interpolation="nearest")
    axes.axis("off")
    for x, y, text, align in labels:
        axes.text(x, y, text, ha=align, va="bottom" if align == "center" else "center", fontsize=7)
    figure.text(0.01, 1 - 0.22 / figure.get_figheight(), f"{title} (each pair: real, then synthetic)",
                fontsize=9, va="center")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_png, dpi=DPI)
    return out_png


def _image(path: str) -> Image.Image:
    try:
        return load_rgb(path)
    except DataError:  # its message holds the full local path, which a published page must not show
        raise SkinbenchError(f"the strip's image {Path(path).name} cannot be read; "
                             "was the augmentation cache cleared?") from None
