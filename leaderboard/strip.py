"""Real-vs-synthetic strip per task (seed 000 Figure 4.6) from a run's generation log."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from skinbench.images import load_rgb


def pick_examples(log: pd.DataFrame, per_task: int) -> dict[str, pd.DataFrame]:
    """Up to ``per_task`` kept images per task, cycling over classes so every class shows."""
    if "kept" in log:
        log = log[log["kept"].astype(bool)]
    picked = {}
    for task, rows in log.groupby("task", sort=True):
        by_class = [group.reset_index(drop=True) for _, group in rows.groupby("label", sort=True)]
        order = [frame.iloc[i] for i in range(per_task) for frame in by_class if i < len(frame)]
        picked[str(task)] = pd.DataFrame(order[:per_task])
    return picked


def synthetic_strip(generation_log: pd.DataFrame | str | Path, out_png: str | Path, per_task: int = 4) -> Path:
    """One row per task of (real, synthetic) pairs, labelled with the class; returns ``out_png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = generation_log if isinstance(generation_log, pd.DataFrame) else pd.read_csv(generation_log)
    picked = pick_examples(log, per_task)
    if not picked:
        raise ValueError("the generation log has no kept synthetic image to show")
    fig, axes = plt.subplots(len(picked), 2 * per_task, figsize=(2.2 * per_task, 1.3 * len(picked)), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for r, (task, rows) in enumerate(picked.items()):
        axes[r, 0].text(-0.1, 0.5, task, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=9)
        for c, (_, row) in enumerate(rows.iterrows()):
            for k, (path, kind) in enumerate(((row["source"], "real"), (row["image"], "synthetic"))):
                axis = axes[r, 2 * c + k]
                axis.imshow(load_rgb(path))
                axis.set_title(f"{kind} ({row['label']})", fontsize=7)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out_png
