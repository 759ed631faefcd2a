"""One vocabulary: a p-value, an interval and a negative Δ are spelt identically in the markdown and HTML
leaderboards and on the published site, and every dummy, metric and kind name comes from one module."""
from __future__ import annotations

import html
import re

from skinbench.leaderboard import build_report, read_results, render_report
from skinbench.leaderboard.site import publish
from skinbench.execution.runner import run_suite
from skinbench.vocabulary import (
    DUMMY_HEADS,
    LOWER_IS_BETTER,
    METRICS,
    MINUS,
    format_interval,
    format_number,
    format_p,
    higher_is_better,
)


def test_numbers_are_spelt_one_way():
    assert format_number(-0.1234, 2, signed=True) == f"{MINUS}0.12"
    assert format_number(0.0004, 2, signed=True) == "0.00"  # no signed zero
    assert format_interval(0.5, 0.25, 0.75) == "0.50 [0.25, 0.75]"
    assert format_interval(0.5, float("nan"), float("nan")) == "0.50"
    assert (format_p(0.0001), format_p(0.0123), format_p(float("nan"))) == ("< 0.001", "0.012", "–")
    assert LOWER_IS_BETTER < set(METRICS) and higher_is_better("macro_f1") and not higher_is_better("ece")


def test_a_p_value_an_interval_and_a_negative_delta_print_identically_everywhere(tmp_path, suite_factory):
    """On a real tiny run: the markdown and HTML leaderboards and the site's task page spell the same numbers."""
    run_suite(suite_factory(protocol={"seeds": [0, 1], "dummy_draws": 100}), tmp_path / "run")
    report = build_report(read_results(tmp_path / "run"), n_boot=300)
    models = report.frame[report.frame["verdict"].notna()]
    worst = models.loc[models["delta_vs_best_dummy"].idxmin()]
    assert worst["delta_vs_best_dummy"] < -0.005, "the tiny demo has a configuration below its best dummy"
    delta = format_interval(worst["delta_vs_best_dummy"], worst["delta_vs_best_dummy_ci_low"],
                            worst["delta_vs_best_dummy_ci_high"], 2, signed=True)
    p = format_p(worst["p_vs_best_dummy_holm"])
    assert delta.startswith(MINUS)
    markdown, page = render_report(report, "markdown"), html.unescape(render_report(report, "html"))
    publish([tmp_path / "run"], tmp_path / "site", n_boot=300)
    site = "\n".join(html.unescape(f.read_text()) for f in (tmp_path / "site" / "tasks").glob("*.html"))
    for text in (markdown, page, site):
        assert delta in text and p in text
        shown = re.sub(r'data-sort="[^"]*"', "", text)  # sort keys are for the script, not for reading
        assert not re.search(r"(?<![\w-])-\d\.\d", shown), "a hyphen never stands for a minus"
    assert set(DUMMY_HEADS) <= set(report.frame["head"])
