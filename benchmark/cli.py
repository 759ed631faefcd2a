"""``skinbench``: run suites, list plugins, render leaderboards, manage the embedding cache."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tabulate import tabulate

from .api import SkinbenchError


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except SkinbenchError as exc:
        print(f"skinbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skinbench: interrupted; finished cells are kept, run the same command again to resume", file=sys.stderr)
        return 130


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skinbench", description=__doc__)
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a suite (default: the embedded demo) and print its leaderboard",
                         description="Run every pending cell of a suite; finished cells in --out are skipped.")
    run.add_argument("suite", nargs="?", help="suite YAML file (omit for the embedded demo suite)")
    run.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")
    run.add_argument("--cache-dir", help="embedding/augmentation cache (default: $SKINBENCH_CACHE or ~/.cache/skinbench)")
    run.add_argument("--format", default="markdown", choices=["markdown", "latex", "html", "csv", "none"],
                     help="leaderboard printed at the end")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.set_defaults(func=cmd_run)

    plugins = sub.add_parser("plugins", help="list every backbone, augmenter, head and dataset found")
    plugins.add_argument("--kind", choices=["backbone", "augmenter", "head", "dataset"])
    plugins.add_argument("--params", action="store_true", help="also show each plugin's parameters and defaults")
    plugins.set_defaults(func=cmd_plugins)

    board = sub.add_parser("leaderboard", help="render a leaderboard from a run directory (recomputes nothing)")
    board.add_argument("run_dir", nargs="+", help="one or more run directories")
    board.add_argument("--format", default="markdown", choices=["markdown", "latex", "html", "csv"])
    board.add_argument("--output", "-o", help="write to this file instead of stdout")
    board.add_argument("--plot", help="also write a macro-F1 bar chart (PNG) here")
    board.add_argument("--by", metavar="COLUMN", help="instead: macro-F1 per subgroup (skin_tone, region, sex, age) "
                                                      "from the stored predictions of one run directory")
    board.set_defaults(func=cmd_leaderboard)

    cache = sub.add_parser("cache", help="inspect or clear the embedding cache")
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("--backbone", help="with clear: only this backbone's entries")
    cache.add_argument("--cache-dir", help="cache root (default: $SKINBENCH_CACHE or ~/.cache/skinbench)")
    cache.set_defaults(func=cmd_cache)

    validate = sub.add_parser("validate", help="check a suite and its datasets without computing anything")
    validate.add_argument("suite", nargs="?", help="suite YAML file (omit for the demo suite)")
    validate.set_defaults(func=cmd_validate)
    return p


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_suite

    start = time.perf_counter()
    results = run_suite(args.suite, args.out, cache_dir=args.cache_dir, progress=not args.no_progress)
    failed = int((results["status"] == "failed").sum())
    print(f"\n{len(results)} result rows in {args.out}/results.csv ({failed} failed) "
          f"in {time.perf_counter() - start:.1f} s\n")
    from .leaderboard import render, write_plot

    out = Path(args.out)
    (out / "leaderboard.html").write_text(render(out, "html"))  # a page to open or publish, with the chart
    write_plot(out, out / "macro_f1.png")
    if args.format != "none":
        print(render(out, args.format))
    print(f"\nwrote {out / 'leaderboard.html'} and {out / 'macro_f1.png'}")
    return 1 if failed else 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .registry import load_catalogue

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
    import pandas as pd

    from .leaderboard import plot_results, read_results, render_results

    if args.by:
        from .leaderboard.subgroups import subgroup_scores, subgroup_table

        table = subgroup_table(subgroup_scores(args.run_dir[0], args.by), args.by)
        text = table.to_csv(index=False) if args.format == "csv" else tabulate(table, headers="keys", showindex=False,
                                                                                tablefmt="github")
        print(text)
        return 0
    results = pd.concat([read_results(d) for d in args.run_dir], ignore_index=True)
    text = render_results(results, args.format)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        print(text)
    if args.plot:
        plot_results(results, args.plot)
        print(f"wrote {args.plot}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from .cache import EmbeddingCache

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
    from .registry import load_catalogue
    from .runner import instantiate, load_dataset
    from .suite import load_suite

    suite = load_suite(args.suite)
    plugins = instantiate(load_catalogue(suite.block, suite.autoload), suite)
    for ds, entry in zip(plugins["datasets"], suite.datasets):
        loaded = load_dataset(ds, entry.tasks, suite.protocol)
        sizes = ", ".join(f"{t.name}: {len(t.samples)}" for t in loaded.tasks)
        print(f"dataset '{ds.label}': {len(loaded.tasks)} task(s) ({sizes}); "
              f"{len(loaded.test_groups[suite.protocol.seeds[0]])} test patients")
    print("suite is valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
