"""The published site's figures, drawn with matplotlib from numbers the caller computed.

Why matplotlib and not Vega-Lite: it is already a dependency, the files it writes need no
JavaScript to display (the site stays viewable from ``file://`` and in a paper), and the same
code is tested in Python. Charts are SVG with text kept as text (small, crisp, searchable);
photographs (the synthetic strip) are PNG. Every figure has a title and a reference line
(chance, or no effect); the caption lives beside it on the page.
"""
from __future__ import annotations

import functools
from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

TONE_COLOURS = {"good": "#1a7f37", "neutral": "#6e7781", "bad": "#cf222e"}
"""Above chance / helps, not distinguishable, below chance / hurts."""
UNJUDGED_COLOUR = "#0969da"
"""Rows without a judgement (e.g. subgroups, or no stored predictions)."""
MUTED_COLOUR = "#c8ccd1"
SVG_METADATA = {"Date": None, "Creator": "skinbench"}  # the same input draws the same file


def plain_text(draw):
    """Draw with mathtext off: names from suites may hold '$' (``$HOME``, prices), which matplotlib
    would otherwise typeset as formulas or fail on."""
    @functools.wraps(draw)
    def drawing(*args, **kwargs):
        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)
    return drawing


def save(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as SVG or PNG by the suffix of ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".svg":
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "skinbench"}):
            figure.savefig(path, format="svg", bbox_inches="tight", metadata=SVG_METADATA)
    else:
        figure.savefig(path, format="png", dpi=120, bbox_inches="tight")
    return path


@plain_text
def interval_plot(rows: pd.DataFrame, title: str, xlabel: str, reference: float, reference_label: str,
                  limits: tuple[float, float]) -> Figure:
    """One horizontal interval per row, best first: the forest plot of Δ vs chance, the paired
    augmentation effects and the subgroup chart are all this picture.

    ``rows`` has columns ``label``, ``estimate``, ``ci_low``, ``ci_high`` (NaN: no interval yet) and
    optionally ``tone`` (``good``/``neutral``/``bad``: colours the row), ``chance`` (a per-row chance
    tick, e.g. a subgroup's own stratified baseline) and ``muted`` (greyed out, e.g. a subgroup below
    the minimum n). ``limits`` is the quantity's range (intervals never leave it).
    """
    rows = rows.reset_index(drop=True)
    figure = Figure(figsize=(7.5, 1.2 + 0.34 * max(len(rows), 1)))
    axes = figure.subplots()
    y = np.arange(len(rows))[::-1]
    colours = [_row_colour(row) for _, row in rows.iterrows()]
    low, high = rows["ci_low"], rows["ci_high"]
    has_interval = low.notna() & high.notna()
    axes.hlines(y[has_interval], low[has_interval], high[has_interval], colors=np.array(colours, dtype=object)[has_interval],
                linewidth=2.2)
    axes.scatter(rows["estimate"], y, c=colours, s=36, zorder=3)
    if "chance" in rows and rows["chance"].notna().any():
        axes.scatter(rows["chance"], y, marker="|", s=160, c="black", zorder=4, label="chance for this row")
    axes.axvline(reference, color="black", linestyle="--", linewidth=1, label=reference_label)
    axes.set_yticks(y, [str(label) for label in rows["label"]], fontsize=8)
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.set_xlim(*_padded(limits, reference, rows))
    axes.set_xlabel(xlabel if has_interval.all() else f"{xlabel}\n(a row without a bar has no interval)")
    axes.set_title(title, fontsize=10, loc="left")
    axes.grid(axis="x", color="#eaeef2")
    axes.set_axisbelow(True)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return figure


def _row_colour(row: pd.Series) -> str:
    if bool(row.get("muted", False)):
        return MUTED_COLOUR
    return TONE_COLOURS.get(str(row.get("tone", "")), UNJUDGED_COLOUR)


def _padded(limits: tuple[float, float], reference: float, rows: pd.DataFrame) -> tuple[float, float]:
    """The axis range: the data and the reference line with a margin, within ``limits`` plus the
    few percent a marker drawn at the very limit needs."""
    values = pd.concat([rows[c] for c in ("estimate", "ci_low", "ci_high", "chance") if c in rows]).dropna()
    low, high = (float(values.min()), float(values.max())) if len(values) else limits
    low, high = min(low, reference), max(high, reference)
    margin = max(0.05, 0.08 * (high - low))
    edge = 0.03 * (limits[1] - limits[0])
    return max(limits[0] - edge, low - margin), min(limits[1] + edge, high + margin)


@plain_text
def reliability_diagrams(curves: list[dict], title: str, columns: int = 3) -> Figure:
    """Small multiples of top-label reliability, one panel per configuration.

    Each curve is a dict with ``label``, ``confidence``, ``accuracy``, ``size`` (equal-mass bins
    from :func:`skinbench.metrics.reliability_bins`), ``ece`` (NaN: not stored) and ``chance`` (the accuracy of
    always predicting the training majority class, drawn as the chance line).
    """
    rows = -(-len(curves) // columns)
    figure = Figure(figsize=(3.1 * min(columns, len(curves)), 3.0 * rows + 0.7), layout="constrained")
    grid = figure.subplots(rows, min(columns, len(curves)), squeeze=False)
    for axes in grid.flat[len(curves):]:
        axes.set_visible(False)
    for axes, curve in zip(grid.flat, curves):
        axes.plot([0, 1], [0, 1], color="#8c959f", linewidth=1, label="calibrated")
        axes.axhline(curve["chance"], color="black", linestyle="--", linewidth=1, label="chance accuracy")
        sizes = 12 + 60 * np.asarray(curve["size"]) / max(np.max(curve["size"]), 1)
        axes.plot(curve["confidence"], curve["accuracy"], color=UNJUDGED_COLOUR, linewidth=1.2)
        axes.scatter(curve["confidence"], curve["accuracy"], s=sizes, color=UNJUDGED_COLOUR, zorder=3, label="bins")
        axes.set_xlim(0, 1.02)
        axes.set_ylim(-0.02, 1.02)
        axes.set_aspect("equal")
        ece = "–" if np.isnan(curve["ece"]) else f"{curve['ece']:.3f}"
        axes.set_title(f"{curve['label']}\nECE {ece}", fontsize=7.5)
        axes.set_xlabel("confidence", fontsize=8)
        axes.set_ylabel("accuracy", fontsize=8)
        axes.tick_params(labelsize=7)
    figure.legend(*grid.flat[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=7,
                  frameon=False)
    figure.suptitle(title, fontsize=10, x=0.02, ha="left")
    return figure


@plain_text
def blob_plot(frequencies: pd.DataFrame, ranks: pd.DataFrame, title: str) -> Figure:
    """challengeR's blob plot (Wiesenfarth et al., Sci. Rep. 2021): one column per configuration in reported
    order, a disc at every rank it takes on the resamples with area ∝ the share of resamples, its median
    rank (black cross) and its 95% rank interval (black line).

    ``frequencies`` has columns ``label``, ``rank``, ``share``; ``ranks`` one row per configuration, best
    first, with ``label``, ``rank_median``, ``rank_ci_low``, ``rank_ci_high``.
    """
    ranks = ranks.reset_index(drop=True)
    n = max(len(ranks), 1)
    figure = Figure(figsize=(1.2 + 0.55 * n + 2.2, 1.6 + 0.32 * n))
    axes = figure.subplots()
    x = {label: i for i, label in enumerate(ranks["label"])}
    blobs = frequencies[frequencies["label"].isin(list(x))]
    axes.scatter([x[label] for label in blobs["label"]], blobs["rank"], s=400 * blobs["share"], color=UNJUDGED_COLOUR,
                 alpha=0.55, linewidths=0, label="share of resamples (area)")
    axes.vlines(ranks.index, ranks["rank_ci_low"], ranks["rank_ci_high"], colors="black", linewidth=1.4,
                label="95% rank interval")
    axes.scatter(ranks.index, ranks["rank_median"], marker="x", s=40, c="black", zorder=3, label="median rank")
    axes.set_xticks(ranks.index, [str(label) for label in ranks["label"]], rotation=45, ha="right", fontsize=7)
    axes.set_yticks(range(1, n + 1))
    axes.set_ylim(n + 0.6, 0.4)  # rank 1 at the top
    axes.set_xlim(-0.6, n - 0.4)
    axes.set_ylabel("rank (1 = best macro-F1)")
    axes.set_title(title, fontsize=10, loc="left")
    axes.grid(axis="y", color="#eaeef2")
    axes.set_axisbelow(True)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, markerscale=0.5)
    return figure


@plain_text
def learning_curve(points: pd.DataFrame, title: str, no_labels: frozenset[str] = frozenset()) -> Figure:
    """Macro-F1 against training patients (log axis) of one task: a line per configuration with its 95% band,
    and the best dummy's macro-F1 at each size (most-frequent, uniform or stratified) as the dashed chance line.

    ``points`` is one task's rows of :class:`skinbench.leaderboard.stats.curves.CurveStats.points`. Heads
    labelled in ``no_labels`` train on no labelled image (zero-shot): drawn dotted, the curve's 0-label start."""
    figure = Figure(figsize=(7.5, 4.2))
    axes = figure.subplots()
    models = points[~points["head"].astype(str).str.startswith("dummy:")]
    for index, (_, curve) in enumerate(models.groupby("cell_id", sort=False)):
        curve = curve.sort_values("n_train_patients")
        colour = matplotlib.colormaps["tab10"](index % 10)
        label = " · ".join(str(curve[c].iloc[0]) for c in ("backbone_label", "augmenter_label", "head_label"))
        zero_shot = str(curve["head_label"].iloc[0]) in no_labels
        axes.plot(curve["n_train_patients"], curve["macro_f1"], marker="o", color=colour, linewidth=1.5,
                  linestyle=":" if zero_shot else "-", label=f"{label} (no labelled images)" if zero_shot else label)
        axes.fill_between(curve["n_train_patients"], curve["macro_f1_ci_low"], curve["macro_f1_ci_high"],
                          color=colour, alpha=0.15, linewidth=0)
    dummies = points[points["head"].astype(str).str.startswith("dummy:")]
    chance = dummies.groupby("n_train_patients")["macro_f1"].max().sort_index()
    if len(chance):
        axes.plot(chance.index, chance.to_numpy(), color="black", linestyle="--", linewidth=1,
                  label="chance (best dummy)")
    axes.set_xscale("log")
    sizes = np.unique(np.round(points["n_train_patients"].to_numpy(float), 1))
    axes.set_xticks(sizes, [format(v, ".0f") if v == round(v) else format(v, ".1f") for v in sizes])
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("training patients (log scale; mean over draws and folds)")
    axes.set_ylabel("macro-F1 on the same test patients")
    axes.set_title(title, fontsize=10, loc="left")
    axes.grid(color="#eaeef2")
    axes.set_axisbelow(True)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return figure
