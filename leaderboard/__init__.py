"""Leaderboards from run directories: statistics, tables, pages and a chart.

Nothing is re-run: the numbers come from the stored result rows and per-image predictions.
:mod:`.stats` computes (patient-bootstrap intervals, verdicts, ties, effects, sizes, subgroups);
:mod:`.tables` lays out; :mod:`.render` writes markdown, LaTeX, HTML or CSV. Work on several run
directories by merging their :func:`read_results` frames with :func:`merge_results`.
"""
from .plots import plot_results, write_plot
from .render import FORMATS, render, render_report, render_results
from .stats import (
                    aggregate,
                    augmentation_effects,
                    configuration_stats,
                    leaderboard_stats,
                    subgroup_stats,
                    task_summary,
                    variance_components,
)
from .tables import build_report, merge_results, read_results

__all__ = [
    "FORMATS", "aggregate", "augmentation_effects", "build_report", "configuration_stats", "leaderboard_stats",
    "merge_results", "plot_results", "read_results", "render", "render_report", "render_results",
    "subgroup_stats", "task_summary", "variance_components", "write_plot",
]
