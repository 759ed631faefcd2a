"""``skinbench``: run suites, list plugins, render leaderboards, manage the embedding cache."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from tabulate import tabulate

from skinbench.api import SkinbenchError


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(format="skinbench: %(levelname)s: %(message)s", level=logging.WARNING)
    try:
        return args.func(args)
    except SkinbenchError as exc:
        if args.debug:
            raise
        print(f"skinbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skinbench: interrupted; finished cells are kept, run the same command again to resume", file=sys.stderr)
        return 130


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skinbench", description=__doc__)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error instead of its message")
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a suite (default: the embedded demo) and print its leaderboard",
                         description="Run every pending cell of a suite; finished cells in --out are skipped.")
    run.add_argument("suite", nargs="?", help="suite YAML file (omit for the embedded demo suite)")
    run.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")
    run.add_argument("--cache-dir", help="embedding/augmentation cache (default: $SKINBENCH_CACHE or ~/.cache/skinbench)")
    run.add_argument("--format", default="markdown", choices=["markdown", "latex", "html", "csv", "none"],
                     help="leaderboard printed at the end")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars (hidden anyway when stderr is not a terminal)")
    run.add_argument("--executor", choices=["local", "dask"], help="where the grid runs (default: the suite's "
                     "executor section, else local: this process)")
    run.add_argument("--workers", type=int, help="dask: worker processes of the local cluster (default: one per core)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="dask: an existing scheduler, e.g. tcp://host:8786")
    run.add_argument("--cell", action="append", metavar="CELL_ID", help="run only this cell (repeatable); "
                     "cell ids are in results.csv")
    run.set_defaults(func=cmd_run)

    plugins = sub.add_parser("plugins", help="list every backbone, augmenter, head and dataset found")
    plugins.add_argument("--kind", choices=["backbone", "augmenter", "head", "dataset"])
    plugins.add_argument("--params", action="store_true", help="also show each plugin's parameters and defaults")
    plugins.set_defaults(func=cmd_plugins)

    board = sub.add_parser("leaderboard", help="render a leaderboard from a run directory (recomputes nothing)")
    board.add_argument("run_dir", nargs="+", help="one or more run directories")
    board.add_argument("--format", default="markdown", choices=["markdown", "latex", "html", "csv"])
    board.add_argument("--output", "-o", help="write to this file instead of stdout")
    board.add_argument("--plot", help="also write a chart (PNG) here: macro-F1 per task, or per subgroup with --by")
    board.add_argument("--by", metavar="COLUMN", help="instead: macro-F1 per subgroup (skin_tone, region, sex, age) "
                                                      "from the stored predictions")
    board.add_argument("--min-n", type=int, help="with --by: subgroups with fewer test images are not scored "
                                                 "(default 10)")
    board.add_argument("--curves", action="store_true", help="instead: the label-efficiency tables (learning "
                                                               "curves of protocol.train_fractions / shots); --plot "
                                                               "writes one figure per task")
    board.add_argument("--n-boot", type=int, help="patient-bootstrap resamples (default 2000)")
    board.add_argument("--allow-different-data", action="store_true", help="show runs of one dataset made on other "
                       "data or test patients as separate datasets instead of refusing them")
    board.set_defaults(func=cmd_leaderboard)

    cache = sub.add_parser("cache", help="inspect or clear the embedding cache")
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("--backbone", help="with clear: only this backbone's entries")
    cache.add_argument("--cache-dir", help="cache root (default: $SKINBENCH_CACHE or ~/.cache/skinbench)")
    cache.set_defaults(func=cmd_cache)

    validate = sub.add_parser("validate", help="preflight: check a suite, its plugins, weights, datasets and "
                                               "folders without computing anything (run does this first)")
    validate.add_argument("suite", nargs="?", help="suite YAML file (omit for the demo suite)")
    validate.add_argument("--out", help="also check that this run directory can be written")
    validate.add_argument("--cache-dir", help="cache root to check (default: $SKINBENCH_CACHE or ~/.cache/skinbench)")
    validate.set_defaults(func=cmd_validate)

    audit = sub.add_parser("audit", help="data audit: near-duplicates across patients, pretraining contamination "
                                         "and (with --out RUN) likely label errors in the test images",
                           description="Audit a suite's data before believing a verdict. Near-duplicates (pHash) and "
                                       "contamination need only the suite; with --out, the likely label errors of "
                                       "the run's best configurations (cleanlab) and the verdicts that change "
                                       "without them are added, and everything is written to RUN/audit.json.")
    audit.add_argument("suite", nargs="?", help="suite YAML file (omit for the demo suite)")
    audit.add_argument("--out", help="a run directory of this suite: also check its test labels; writes audit.json")
    audit.add_argument("--cache-dir", help="cache root (perceptual hashes are cached there; default: $SKINBENCH_CACHE "
                                           "or ~/.cache/skinbench)")
    audit.add_argument("--n-boot", type=int, help="patient-bootstrap resamples of the sensitivity check (default 2000)")
    audit.set_defaults(func=cmd_audit)

    schema = sub.add_parser("schema", help="print the JSON Schema of suite files (for editors), with every "
                                           "installed plugin's parameters")
    schema.add_argument("--output", "-o", help="write to this file instead of stdout")
    schema.set_defaults(func=cmd_schema)

    publish = sub.add_parser("publish", help="write a static leaderboard site (no server, no CDN) from run directories",
                             description="Write a self-contained static site: per-task leaderboards with intervals "
                                         "and verdicts, figures, provenance and downloads. Opens from file:// or any "
                                         "static host; recomputes nothing but the statistics.")
    publish.add_argument("run_dir", nargs="+", help="one or more run directories")
    publish.add_argument("--out", required=True, help="site folder (replaced as a whole; must be new, empty or a "
                                                      "site published before)")
    publish.add_argument("--n-boot", type=int, help="patient-bootstrap resamples (default: the leaderboard's, 2000)")
    publish.add_argument("--allow-different-data", action="store_true", help="show runs of one dataset made on other "
                         "data or test patients as separate datasets instead of refusing them")
    publish.set_defaults(func=cmd_publish)
    add_sharing_commands(sub)
    return p


def add_sharing_commands(sub) -> None:
    """compare, bundle and verify: what a leaderboard that accepts others' results needs."""
    compare = sub.add_parser("compare", help="compare two runs of the same suite: paired differences, prediction "
                                             "agreement, verdicts and tie groups that flip")
    compare.add_argument("run_a", help="run directory A")
    compare.add_argument("run_b", help="run directory B")
    compare.add_argument("--format", default="markdown", choices=["markdown", "csv", "json"])
    compare.add_argument("--output", "-o", help="write to this file instead of stdout")
    compare.add_argument("--n-boot", type=int, help="patient-bootstrap resamples (default 2000)")
    compare.add_argument("--fail-on-flip", action="store_true", help="exit 1 when a verdict or tie group flips "
                                                                      "(for CI guarding a published leaderboard)")
    compare.set_defaults(func=cmd_compare)

    bundle = sub.add_parser("bundle", help="pack a run directory into a submission bundle with sha256 digests")
    bundle.add_argument("run_dir")
    bundle.add_argument("--out", required=True, help="bundle file, NAME.tar.gz")
    bundle.add_argument("--n-boot", type=int, help="resamples of the leaderboard numbers it records (default 2000)")
    bundle.set_defaults(func=cmd_bundle)

    verify = sub.add_parser("verify", help="check a submission bundle: digests, leaderboard numbers recomputed from "
                                           "its predictions, and its split when the data is here")
    verify.add_argument("bundle")
    verify.set_defaults(func=cmd_verify)


def cmd_run(args: argparse.Namespace) -> int:
    from skinbench.execution.runner import run_checked
    from skinbench.configuration.suite import load_suite
    from skinbench.data.preflight import preflight

    start = time.perf_counter()
    suite = load_suite(args.suite)
    overrides = {k: v for k, v in (("kind", args.executor), ("workers", args.workers), ("scheduler", args.scheduler))
                 if v is not None}
    if (args.workers or args.scheduler) and not args.executor:
        overrides["kind"] = "dask"
    executor = suite.executor.model_copy(update=overrides)
    checked = preflight(suite, args.out, args.cache_dir)
    for warning in checked.warnings:
        print(f"skinbench: warning: {warning}", file=sys.stderr)
    progress = not args.no_progress and sys.stderr.isatty()  # bars in a log file are noise
    try:
        results = run_checked(checked, progress=progress, executor=executor, cells=args.cell)
    except KeyboardInterrupt:
        from skinbench.record.store import ResultsStore

        kept = int((ResultsStore(args.out).read()["status"] == "ok").sum())
        print(f"\nskinbench: interrupted; {kept} finished cell(s) kept in {args.out}; run the same command again "
              "to resume", file=sys.stderr)
        return 130
    failed = results[results["status"] == "failed"]
    print(f"\n{len(results)} result rows in {args.out}/results.csv ({len(failed)} failed) "
          f"in {time.perf_counter() - start:.1f} s\n")
    text, wrote, notes = run_leaderboard(Path(args.out), args.format)
    if text:
        print(text)
    for note in notes:
        print(note, file=sys.stderr)
    if len(failed):
        print(failure_summary(failed), file=sys.stderr)
    print(f"\nwrote {', '.join(wrote)}")
    return 1 if len(failed) else 0


def run_leaderboard(out: Path, fmt: str) -> tuple[str, list[str], list[str]]:
    """The end-of-run leaderboard: printed text, files written, notes. Kept in the run directory and reused
    while nothing it reads has changed, so a rerun of a finished suite recomputes no bootstrap."""
    from skinbench.record.rendered import keep_report, kept_report, report_key

    key = report_key(out)
    kept = kept_report(out, key)
    if kept is not None and fmt in kept.get("texts", {}):
        return kept["texts"][fmt], [str(out / name) for name in kept["wrote"]], kept["notes"]
    from skinbench.atomic import atomic_write
    from skinbench.leaderboard import build_report, read_results, render_report
    from skinbench.leaderboard.render import FORMATS
    from .leaderboard.plots import PLOT_CAPTION
    from .leaderboard.render import html_figures

    rows = read_results(out)
    report = build_report(rows)  # one bootstrap serves the page, the terminal and the chart
    figures = html_figures(rows, out)  # the chart is drawn once: embedded in the page and saved as PNG
    texts = {name: render_report(report, name, figures if name == "html" else []) for name in FORMATS}
    texts["none"] = ""
    (out / "leaderboard.html").write_text(texts["html"], encoding="utf-8")
    wrote, notes = [out / "leaderboard.html"], []
    chart = next((png for caption, png in figures if caption == PLOT_CAPTION and png), None)
    if chart is not None:
        wrote.append(atomic_write(out / "macro_f1.png", lambda fh: fh.write(chart)))
    else:
        notes.append("skinbench: no chart: nothing to plot: no successful non-dummy run in the results")
    keep_report(out, key, texts, [path.name for path in wrote], notes)
    return texts[fmt], [str(path) for path in wrote], notes


def failure_summary(failed) -> str:
    """Each distinct cause once, with how many (cell, seed) runs it failed: the real reason, in the terminal."""
    causes = failed.groupby("error", sort=False).size().sort_values(ascending=False)
    lines = [f"{len(failed)} run(s) failed (details in errors.log):"]
    lines += [f"  {n} x {' '.join(str(cause).split())[:400]}" for cause, n in causes.items()]
    return "\n".join(lines)


def cmd_plugins(args: argparse.Namespace) -> int:
    from skinbench.configuration.registry import load_catalogue

    catalogue = load_catalogue()
    rows = [r for r in catalogue.rows() if args.kind in (None, r["kind"])]
    columns = ["kind", "name", "version", "package", "license", "description"]
    if args.params:
        for r in rows:
            r["params"] = ", ".join(f"{k}={v!r}" for k, v in catalogue.entries[r["kind"]][r["name"]].cls.params.items())
        columns.append("params")
    print(tabulate([[r[c] for c in columns] for r in rows], headers=columns, tablefmt="simple", maxcolwidths=60))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from skinbench.leaderboard import (
        build_report,
        merge_results,
        plot_results,
        read_results,
        render_report,
        subgroup_stats,
    )
    from .leaderboard.curves import curves_report, plot_curves
    from .leaderboard.render import curve_figures, html_figures
    from .leaderboard.stats.curves import learning_curves
    from .leaderboard.subgroups import plot_subgroups, subgroup_report

    results = merge_results([read_results(d) for d in args.run_dir], args.allow_different_data)
    options = {"n_boot": args.n_boot} if args.n_boot else {}
    if args.by:
        options.update({"min_n": args.min_n} if args.min_n is not None else {})
        scores = subgroup_stats(results, args.by, **options)
        report, figures = subgroup_report(scores, args.by, **options), []
    elif args.curves:
        curves = learning_curves(results, **options)
        report, figures = curves_report(curves, **options), curve_figures(curves) if args.format == "html" else []
    else:
        report = build_report(results, **options)
        figures = html_figures(results) if args.format == "html" else []
    text = render_report(report, args.format, figures)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text)
    for warning in report.warnings:
        print(f"skinbench: warning: {warning}", file=sys.stderr)
    if args.plot:
        written = ([plot_subgroups(scores, args.by, args.plot)] if args.by else plot_curves(curves, args.plot)
                   if args.curves else [plot_results(results, args.plot)])
        print(f"wrote {', '.join(str(p) for p in written if p) or args.plot}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from skinbench.execution.cache import EmbeddingCache

    cache = EmbeddingCache(args.cache_dir)
    if args.action == "clear":
        removed = cache.clear(args.backbone)
        print(f"removed {removed} backbone folder(s) from {cache.dir}")
        return 0
    rows = cache.info()
    print(f"embedding cache: {cache.dir}")
    print(tabulate(rows, headers="keys") if rows else "(empty)")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from skinbench.data.preflight import preflight

    start = time.perf_counter()
    checked = preflight(args.suite, args.out, args.cache_dir)
    print("\n".join(checked.summary()))
    print(f"suite is valid (preflight took {time.perf_counter() - start:.1f} s)")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from skinbench.data.audit import audit_lines, audit_record, write_audit
    from skinbench.data.preflight import preflight

    checked = preflight(args.suite, None, args.cache_dir)
    label_errors = None
    if args.out:
        from skinbench.data.audit.label_errors import label_error_audit
        from skinbench.leaderboard import read_results

        label_errors = label_error_audit(read_results(args.out), args.n_boot)
    record = audit_record(checked, label_errors)
    print("\n".join(audit_lines(record)))
    if args.out:
        print(f"wrote {write_audit(args.out, record)}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from skinbench.configuration.registry import load_catalogue
    from skinbench.configuration.schema import suite_schema

    text = json.dumps(suite_schema(load_catalogue()), indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .leaderboard.site import publish

    site = publish(args.run_dir, args.out, allow_different_data=args.allow_different_data,
                   **({"n_boot": args.n_boot} if args.n_boot else {}))
    print(f"wrote {site.pages} pages and {site.files} files ({site.bytes / 1e6:.1f} MB) in {site.seconds:.1f} s; "
          f"open {site.out / 'index.html'}")
    return 0



def cmd_compare(args: argparse.Namespace) -> int:
    from .leaderboard.compare import compare_runs
    from .leaderboard.compare_report import render_comparison

    comparison = compare_runs(args.run_a, args.run_b, **({"n_boot": args.n_boot} if args.n_boot else {}))
    text = render_comparison(comparison, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    print(f"skinbench compare: {comparison.summary()}", file=sys.stderr)
    return 1 if args.fail_on_flip and len(comparison.flips) else 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from .leaderboard.bundle import write_bundle

    written = write_bundle(args.run_dir, args.out, **({"n_boot": args.n_boot} if args.n_boot else {}))
    print(f"wrote {written.path}: {written.files} files, {written.bytes / 1e6:.2f} MB, "
          f"{written.configurations} leaderboard rows; check it with `skinbench verify {written.path}`")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .leaderboard.verify import verify_bundle

    report = verify_bundle(args.bundle)
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
