"""Wall time of rerunning a finished suite: ``skinbench run --out DIR`` where every cell is already stored.

Runs the suite once into fresh run and cache folders (in a temporary folder, or ``--workdir`` to keep and
reuse them), then times ``--reruns`` reruns, each a fresh ``skinbench run`` process, and prints their min
and median next to two floors: a process that only imports ``skinbench.cli``, and ``python -c pass``.
The load average is printed too: on a shared machine, other work inflates every number.

    python benchmarks/rerun_speed.py [--suite SUITE.yaml] [--reruns 7] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def skinbench_command() -> list[str]:
    """The installed console script beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("skinbench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "skinbench.cli"]


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: some cells failed, still a finished run
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds


def summary(name: str, times: list[float]) -> str:
    return f"{name}: min {min(times):.2f} s, median {statistics.median(times):.2f} s over {len(times)} " \
           f"({', '.join(f'{t:.2f}' for t in times)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", help="suite YAML (default: the embedded demo suite)")
    parser.add_argument("--reruns", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="keep the run and cache folders here (a finished one is reused)")
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="skinbench-rerun-"))
    out, cache = root / "run", root / "cache"
    env = {**os.environ, "SKINBENCH_CACHE": str(cache)}
    run = [*skinbench_command(), "run", *([args.suite] if args.suite else []), "--out", str(out),
           "--cache-dir", str(cache), "--no-progress"]
    try:
        first = timed(run, env)
        load_before = os.getloadavg()
        reruns = [timed(run, env) for _ in range(args.reruns)]
        floor = [timed([sys.executable, "-c", "import skinbench.cli"], env) for _ in range(args.reruns)]
        bare = [timed([sys.executable, "-c", "pass"], env) for _ in range(args.reruns)]
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    load = " -> ".join(" ".join(f"{v:.2f}" for v in loads) for loads in (load_before, os.getloadavg()))
    print(f"suite={args.suite or 'embedded demo'} cores={os.cpu_count()} load average (1, 5, 15 min), before and "
          f"after the reruns: {load}")
    print(f"first run (computes every cell unless --workdir held a finished run): {first:.1f} s")
    print(summary("rerun of the finished suite", reruns))
    print(summary("floor: python -c 'import skinbench.cli'", floor))
    print(summary("python -c pass", bare))


if __name__ == "__main__":
    main()
