"""Leaderboards from a run directory's stored results: tables, pages and a chart.

Nothing is recomputed: the numbers are aggregates of ``results.csv``. Work on
several run directories by concatenating their :func:`read_results` frames and
passing them to :func:`render_results`, :func:`aggregate` or :func:`plot_results`.
"""
from .plots import plot_results, write_plot
from .render import FORMATS, render, render_results
from .tables import aggregate, read_results

__all__ = ["FORMATS", "aggregate", "plot_results", "read_results", "render", "render_results", "write_plot"]
