"""Render a leaderboard report as markdown, LaTeX, a standalone HTML page, or a tidy CSV.

Built from the run directory's stored files alone: the result rows and per-image predictions for
the numbers (:mod:`skinbench.leaderboard.stats`), and for HTML the images already there
(``synthetic_strip.png``) or drawn from stored files (the macro-F1 chart, the strip from
``generation_log.csv``).
"""
from __future__ import annotations

import base64
import html
import io
import re
import tempfile
from pathlib import Path

import pandas as pd
from skinbench.api import SkinbenchError
from tabulate import LATEX_ESCAPE_RULES, tabulate

from .plots import PLOT_CAPTION, has_model_cells, plot_results, run_display_names
from .figures import learning_curve
from .stats import N_BOOT
from .stats.curves import CurveStats, learning_curves
from .layout import Report, Section
from .tables import build_report, read_results

FORMATS = ("markdown", "latex", "html", "csv")
STRIP_PNG = "synthetic_strip.png"
GENERATION_LOG = "generation_log.csv"
STRIP_CAPTION = "Real training images and synthetic images generated from them"
LEARNING_CURVE_CAPTION = ("macro-F1 against training patients (log scale) per configuration, with 95% patient-bootstrap "
                          "bands on the same test patients at every size; dashed: the stratified dummy (chance)")


def render(run_dir: str | Path, fmt: str = "markdown", digits: int = 2, n_boot: int = N_BOOT) -> str:
    """The leaderboard of one run directory in ``fmt`` (one of :data:`FORMATS`)."""
    return render_results(read_results(run_dir), fmt, digits=digits, run_dir=run_dir, n_boot=n_boot)


def render_results(results: pd.DataFrame, fmt: str = "markdown", digits: int = 2,
                   run_dir: str | Path | None = None, n_boot: int = N_BOOT) -> str:
    """Render raw results rows (e.g. merged from several run directories).

    ``run_dir`` is only used by HTML, to find the synthetic-image strip.
    """
    check_format(fmt)
    figures = html_figures(results, run_dir) if fmt == "html" else []
    return render_report(build_report(results, digits, n_boot=n_boot), fmt, figures)


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise SkinbenchError(f"unknown leaderboard format '{fmt}'; choose one of {', '.join(FORMATS)}")


def render_report(report: Report, fmt: str, figures: list[tuple[str, bytes | None]] = ()) -> str:
    """A built report (the main leaderboard or a subgroup one) as text; CSV is its tidy frame."""
    check_format(fmt)
    if fmt == "csv":
        return report.frame.to_csv(index=False)
    if fmt == "markdown":
        return to_markdown(report.sections)
    if fmt == "latex":
        return to_latex(report.sections)
    return to_html(report.sections, figures=figures)


# ---------------------------------------------------------------- markdown


def to_markdown(sections: list[Section]) -> str:
    parts = ["# skinbench leaderboard"]
    for section in sections:
        parts.append(f"## {section.title}")
        for table in section.tables:
            frame = table.frame.map(_markdown_cell).rename(columns=_markdown_cell)
            parts += [f"### {table.title}", f"*{markdown_escape(table.caption)}*", _tabulate(frame, "github")]
    return "\n\n".join(parts) + "\n"


def markdown_escape(text: str) -> str:
    """Backslash the characters that would start emphasis or code inside running text."""
    return re.sub(r"([\\`*_])", r"\\\1", text)


def _markdown_cell(value: object) -> str:
    """A '|' inside a table cell would split it."""
    return str(value).replace("|", "\\|")


# ---------------------------------------------------------------- LaTeX

LATEX_SYMBOLS = {"±": r"$\pm$", "Δ": r"$\Delta$", "√": r"$\surd$", "×": r"$\times$", "≥": r"$\geq$", "−": "-", "–": "--", "…": r"\dots{}"}


def to_latex(sections: list[Section]) -> str:
    """A LaTeX fragment to ``\\input``: needs ``\\usepackage{booktabs}``."""
    parts = ["% skinbench leaderboard; requires \\usepackage{booktabs}"]
    for section in sections:
        parts.append(f"\\subsection*{{{latex_escape(section.title)}}}")
        for table in section.tables:
            tabular = _latex_symbols(_tabulate(table.frame, "latex_booktabs"))
            caption = latex_escape(f"{table.title}. {table.caption}")
            parts.append(f"\\begin{{table}}[ht]\n\\centering\n\\caption{{{caption}}}\n{tabular}\n\\end{{table}}")
    return "\n\n".join(parts) + "\n"


def latex_escape(text: str) -> str:
    """Escape text outside tabulate (headings, captions) with tabulate's own rules, then map symbols."""
    return _latex_symbols("".join(LATEX_ESCAPE_RULES.get(char, char) for char in text))


def _latex_symbols(text: str) -> str:
    """Replace the few Unicode symbols the tables use; tabulate has already escaped the rest."""
    for symbol, command in LATEX_SYMBOLS.items():
        text = text.replace(symbol, command)
    return text


# ---------------------------------------------------------------- HTML

HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
tbody tr:nth-child(even) { background: #fafafa; }
.caption { font-style: italic; color: #555; max-width: 60em; }
img { max-width: 100%; }
"""


def to_html(sections: list[Section], figures: list[tuple[str, bytes | None]] = ()) -> str:
    """A standalone page: every name is escaped and images are embedded as data URIs.

    A figure without image bytes is shown as its caption alone (the reason it is missing).
    """
    body = ["<h1>skinbench leaderboard</h1>"]
    for caption, png in figures:
        body.append(_html_figure(caption, png))
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        for table in section.tables:
            body += [f"<h3>{html.escape(table.title)}</h3>",
                     f"<p class=\"caption\">{html.escape(table.caption)}</p>",
                     _tabulate(table.frame, "html")]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>skinbench leaderboard</title>\n<style>{HTML_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _html_figure(caption: str, png: bytes | None) -> str:
    if png is None:
        return f"<p class=\"caption\">{html.escape(caption)}</p>"
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure><img alt=\"{html.escape(caption)}\" src=\"data:image/png;base64,{data}\">"
            f"<figcaption class=\"caption\">{html.escape(caption)}</figcaption></figure>")


def html_figures(results: pd.DataFrame, run_dir: str | Path | None = None) -> list[tuple[str, bytes | None]]:
    """The macro-F1 chart, the learning curves and, from a run directory, the real-vs-synthetic strip."""
    figures = []
    if has_model_cells(results):
        chart = io.BytesIO()
        plot_results(results, chart, dataset_names=run_display_names(run_dir) if run_dir is not None else None)
        figures.append((PLOT_CAPTION, chart.getvalue()))
    figures += curve_figures(learning_curves(results))
    if run_dir is not None:
        figures += _synthetic_strip(Path(run_dir))
    return figures


def curve_figures(curves: CurveStats) -> list[tuple[str, bytes | None]]:
    """One learning-curve figure (PNG) per task with curve points."""
    out = []
    for (dataset, task), points in (curves.points.groupby(["dataset", "task"], sort=False) if not curves.empty else []):
        buffer = io.BytesIO()
        learning_curve(points, f"Learning curves: {dataset}/{task}").savefig(buffer, format="png", dpi=110,
                                                                             bbox_inches="tight")
        out.append((f"{dataset}/{task}: {LEARNING_CURVE_CAPTION}", buffer.getvalue()))
    return out


def _synthetic_strip(run_dir: Path) -> list[tuple[str, bytes | None]]:
    """The stored strip, else one drawn from generation_log.csv when the strip module is installed."""
    stored = run_dir / STRIP_PNG
    if stored.exists():
        return [(STRIP_CAPTION, stored.read_bytes())]
    if not (run_dir / GENERATION_LOG).exists():
        return []
    try:
        from .strip import synthetic_strip
    except ImportError:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / STRIP_PNG
        try:
            synthetic_strip(run_dir / GENERATION_LOG, out)
        except (SkinbenchError, OSError) as error:
            return [(f"No real-vs-synthetic strip: {error}", None)]
        return [(STRIP_CAPTION, out.read_bytes())]


def _tabulate(frame: pd.DataFrame, tablefmt: str) -> str:
    return tabulate(frame.values.tolist(), headers=list(frame.columns), tablefmt=tablefmt, disable_numparse=True)
