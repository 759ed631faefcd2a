"""``skinbench compare`` output: a markdown report, the pairs as CSV, or everything as JSON."""
from __future__ import annotations

import json
import math

from skinbench.vocabulary import MISSING, format_interval, format_number, format_p, format_rank

from .compare import Comparison
from .render import markdown_escape

COMPARE_FORMATS = ("markdown", "csv", "json")
CSV_COLUMNS = [
    "dataset", "task", "configuration", "matched_by", "cell_id_a", "cell_id_b", "paired",
    "macro_f1_mean_a", "macro_f1_ci_low_a", "macro_f1_ci_high_a", "macro_f1_mean_b", "macro_f1_ci_low_b",
    "macro_f1_ci_high_b", "delta", "delta_ci_low", "delta_ci_high", "p_higher_holm", "p_lower_holm", "agree",
    "same_labels", "max_proba_diff", "images_compared", "verdict_a", "verdict_b", "verdict_flip", "tie_a", "tie_b",
    "tie_flip", "rank_a", "rank_ci_low_a", "rank_ci_high_a", "rank_b", "rank_ci_low_b", "rank_ci_high_b", "differs",
]


def render_comparison(comparison: Comparison, fmt: str = "markdown", digits: int = 2) -> str:
    if fmt == "csv":
        return comparison.pairs[CSV_COLUMNS].to_csv(index=False)
    if fmt == "json":
        return json.dumps(_record(comparison), indent=2, allow_nan=False) + "\n"
    return _markdown(comparison, digits)


def _record(comparison: Comparison) -> dict:
    pairs = comparison.pairs[CSV_COLUMNS].astype(object)
    return {
        "run_a": str(comparison.a.dir), "run_b": str(comparison.b.dir), "summary": comparison.summary(),
        "n_boot": comparison.a.stats.n_boot, "environment": comparison.environment,
        "tasks": [_plain(r) for r in comparison.tasks.to_dict("records")],
        "only_a": comparison.only_a, "only_b": comparison.only_b,
        "pairs": [_plain(r) for r in pairs.to_dict("records")],
    }


def _plain(record: dict) -> dict:
    """JSON values: NaN as null, numpy scalars as Python ones."""
    out = {}
    for key, value in record.items():
        if hasattr(value, "item"):
            value = value.item()
        out[key] = None if isinstance(value, float) and math.isnan(value) else value
    return out


def _markdown(comparison: Comparison, digits: int) -> str:
    a, b = comparison.a.dir, comparison.b.dir
    lines = ["# skinbench compare", "", f"A: `{a}`  ", f"B: `{b}`", "", f"**{markdown_escape(comparison.summary())}**", ""]
    lines += ["## Environment", ""]
    lines += [f"- {markdown_escape(d)}" for d in comparison.environment] or ["- the receipts record the same versions, "
                                                                             "commit, device and platform"]
    lines += ["", "## Test patients", ""]
    for task in comparison.tasks.itertuples(index=False):
        lines.append(f"- {markdown_escape(f'{task.dataset} / {task.task}')}: " + (
            "the same test patients and labels in both runs: paired comparison on the stored predictions"
            if task.same_test_patients else
            f"different test patients or labels ({task.test_patients_a} vs {task.test_patients_b} patients): "
            "the runs' intervals are compared, nothing is paired"))
    lines += ["", "## Configurations", "",
              f"*Δ = macro-F1(B) − macro-F1(A) paired on the same resampled test patients "
              f"({comparison.a.stats.n_boot} resamples), with its 95% interval; p (Holm): the smaller one-sided "
              "p-value, Holm-corrected over both directions of every paired configuration; 'agree': that corrected p "
              "≥ 0.05 (paired) or the two runs' 95% intervals overlap (not paired). Same labels: share of test "
              "images with the same predicted label over the (seed, split) both runs stored; max |Δp|: the largest "
              "difference of a predicted probability. Verdicts, tie groups and ranks are each run's own.*", ""]
    table = comparison.pairs.apply(lambda r: {
        "task": r["task"], "configuration": r["configuration"], "matched by": r["matched_by"],
        "macro-F1 A": format_interval(r["macro_f1_mean_a"], r["macro_f1_ci_low_a"], r["macro_f1_ci_high_a"], digits),
        "macro-F1 B": format_interval(r["macro_f1_mean_b"], r["macro_f1_ci_low_b"], r["macro_f1_ci_high_b"], digits),
        "Δ (B − A)": format_interval(r["delta"], r["delta_ci_low"], r["delta_ci_high"], digits, signed=True),
        "p (Holm)": format_p(min(r["p_higher_holm"], r["p_lower_holm"])) if r["paired"] else MISSING,
        "agree": "yes" if r["agree"] else "NO",
        "same labels": format_number(r["same_labels"], digits), "max |Δp|": format_number(r["max_proba_diff"], digits),
        "verdict A → B": _change(r["verdict_a"], r["verdict_b"]), "tie group A → B": _change(r["tie_a"], r["tie_b"]),
        "rank A → B": _change(format_rank(r["rank_a"], r["rank_ci_low_a"], r["rank_ci_high_a"]),
                              format_rank(r["rank_b"], r["rank_ci_low_b"], r["rank_ci_high_b"])),
    }, axis=1, result_type="expand")
    from .render import _tabulate

    lines.append(_tabulate(table.map(lambda v: str(v).replace("|", "\\|")), "github"))
    differing = comparison.pairs[comparison.pairs["differs"] != ""]
    if len(differing):
        lines += ["", "## Matched by label: what differs", ""]
        lines += [f"- {markdown_escape(f'{r.task}: {r.configuration}')}: {markdown_escape(r.differs)}"
                  for r in differing.itertuples(index=False)]
    for name, only in (("A", comparison.only_a), ("B", comparison.only_b)):
        if only:
            lines += ["", f"## Only in {name}", ""] + [f"- {markdown_escape(o)}" for o in only]
    return "\n".join(lines) + "\n"


def _change(a: str, b: str) -> str:
    return a if a == b else f"{a} → {b}"
