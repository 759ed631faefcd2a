"""Feed skinbench each class of bad input a new user tried and write what it answers.

    .venv/bin/python docs/bad_input_catalogue.py            # prints the table, writes docs/errors.md

Every case runs the real CLI (`skinbench run`, which does the preflight first) in this process on a
tiny suite; the table shows the exit code, whether a traceback leaked, and the first error line.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from skinbench.cli import main
from skinbench.testing import build_tiny_open_clip

TINY = {"datasets": [{"name": "demo", "params": {"n_patients": 12, "image_size": 24}}],
        "backbones": [{"name": "handcrafted", "params": {"size": 24}}], "heads": ["logreg"],
        "protocol": {"seeds": 1, "dummy_draws": 50}}


def generic_data(folder: Path, rows: int = 12, edit=None) -> Path:
    """A generic-csv dataset of `rows` patients x 2 images; `edit(frame, folder)` spoils it."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    records = []
    for p in range(rows):
        for i in range(2):
            name = f"p{p}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / name)
            records.append({"image": name, "patient_id": f"P{p}", "label": "ab"[(p + i) % 2]})
    frame = pd.DataFrame(records)
    if edit is not None:
        frame = edit(frame, folder)
    frame.to_csv(folder / "data.csv", index=False)
    return folder / "data.csv"


def generic_suite(csv: Path, **params) -> dict:
    return {**TINY, "datasets": [{"name": "generic-csv", "params": {"csv": str(csv), **params}}]}


def missing_image(frame, folder):
    (folder / frame.loc[3, "image"]).unlink()
    return frame


def corrupt_image(frame, folder):
    (folder / frame.loc[4, "image"]).write_bytes(b"not a png")
    return frame


def bomb(frame, folder):
    Image.new("RGB", (20000, 20000)).save(folder / "big.png", optimize=False)
    frame.loc[0, "image"] = "big.png"
    return frame


def prompt_file(path: Path) -> str:
    path.write_text(yaml.safe_dump({"templates": ["a photo of {}."], "tasks": {"acne": {"classes": {"0": "clear"}}}}))
    return str(path)


def cell(frame, row, column, value):
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


def cases(root: Path):
    """(bad input, suite, extra CLI args) for each class."""
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    yield torn_store_case(root)
    yield "`seeds: \"three\"`", {**TINY, "protocol": {"seeds": "three"}}, []
    yield "`seeds: 2.5`", {**TINY, "protocol": {"seeds": 2.5}}, []
    yield "`test_fraction: \"0.2\"`", {**TINY, "protocol": {"test_fraction": "0.2"}}, []
    yield "`val_folds: \"8\"`", {**TINY, "protocol": {"val_folds": "8"}}, []
    yield "misspelt key `sedes`", {**TINY, "protocol": {"sedes": 3}}, []
    yield "`protocol:` given as a list", {**TINY, "protocol": [{"seeds": 1}]}, []
    yield "misspelt plugin `logrge`", {**TINY, "heads": ["logrge"]}, []
    yield "unknown plugin parameter", {**TINY, "heads": [{"name": "logreg", "params": {"Cs": [1]}}]}, []
    yield "missing PanDerm checkpoint", {**TINY, "backbones": [{"name": "panderm", "params": {
        "weights": str(root / "nowhere.pth")}}]}, []
    yield "zero-shot head on an image-only backbone", {**TINY, "heads": ["zero-shot"]}, []
    yield "prompt file without the task", {**TINY, "backbones": [{"name": "open-clip", "params": {
        "model": str(build_tiny_open_clip(root / "clip"))}}], "heads": [{"name": "zero-shot", "params": {
            "prompts": prompt_file(root / "prompts.yaml")}}]}, []
    yield "missing column", generic_suite(generic_data(root / "col"), label_columns=["severity"]), []
    yield "missing image", generic_suite(generic_data(root / "missing", edit=missing_image)), []
    yield "corrupt image", generic_suite(generic_data(root / "corrupt", edit=corrupt_image)), []
    yield "20000x20000 PNG", generic_suite(generic_data(root / "bomb", edit=bomb)), []
    yield "literal label `NaN`", generic_suite(generic_data(
        root / "nanlabel", edit=lambda f, _: cell(f, 5, "label", "NaN"))), []
    yield "empty patient id", generic_suite(generic_data(
        root / "noid", edit=lambda f, _: cell(f, 2, "patient_id", ""))), []
    yield "only 2 patients", generic_suite(generic_data(root / "two", rows=2)), []
    yield "unknown label (declared classes)", generic_suite(generic_data(root / "map"), classes={"label": ["a"]}), []
    split = generic_suite(generic_data(root / "split", edit=lambda f, _: f.assign(
        split=["test" if i in (0, 3) else "train" for i in range(len(f))])))
    yield "patient on both sides of a given split", {**split, "protocol": {**TINY["protocol"], "split_column": "split"}}, []
    yield "`near_duplicate_threshold: \"ten\"`", {**TINY, "protocol": {"near_duplicate_threshold": "ten"}}, []
    yield "`join_near_duplicates: \"yes\"`", {**TINY, "protocol": {"join_near_duplicates": "yes"}}, []
    yield "`scheme: kfold`", {**TINY, "protocol": {"scheme": "kfold"}}, []
    yield "`scheme: cv` with more folds than patients", {**TINY, "protocol": {"scheme": "cv", "folds": 20}}, []
    yield "`scheme: cv` with holdout `repeats`", {**TINY, "protocol": {"scheme": "cv", "repeats": 3}}, []
    yield "a learning-curve fraction of 0 and shots not a number", {**TINY, "protocol": {
        "train_fractions": [0, 0.5], "shots": ["two"]}}, []
    yield "suite not UTF-8", "name: caf\xe9\n".encode("latin-1"), []
    (root / "a_file").write_text("x")
    yield "`--out` is a file", TINY, ["--out", str(root / "a_file")]
    yield "`--out` below a file", TINY, ["--out", str(root / "a_file" / "run")]
    yield "`--out` name not UTF-8", TINY, ["--out", os.fsdecode(os.fsencode(str(root)) + b"/run\xff")]


def torn_store_case(root: Path) -> tuple[str, dict, list]:
    """A finished tiny run whose results.jsonl then loses the end of its last record (a kill mid-write)."""
    out = root / "torn"
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        main(["run", str(root / "tiny.yaml"), "--out", str(out), "--no-progress", "--format", "none"])
    store = out / "results.jsonl"
    store.write_bytes(store.read_bytes()[:-40])
    return "torn last record in results.jsonl", TINY, ["--out", str(out)]


def first_error(text: str) -> str:
    """The error line, with its first detail line when the error is a heading ("... not valid:")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.startswith(("skinbench: error", "skinbench: WARNING",
                                                                         "skinbench: ERROR"))), 0)
    shown = lines[start:start + 2] if lines[start].endswith(":") else lines[start:start + 1]
    return " ".join(shown).removeprefix("skinbench: error: ") if lines else ""


def main_catalogue() -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n, (name, suite, extra) in enumerate(cases(root)):
            path = root / f"suite{n}.yaml"
            if isinstance(suite, bytes):
                path.write_bytes(suite)
            else:
                path.write_text(yaml.safe_dump(suite))
            err = io.StringIO()
            handler = logging.StreamHandler(err)  # the CLI's log lines go to the terminal's stderr, too
            handler.setFormatter(logging.Formatter("skinbench: %(levelname)s: %(message)s"))
            logging.getLogger().addHandler(handler)
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                args = ["run", str(path), "--out", str(root / f"run{n}"), "--no-progress", "--format", "none"]
                code = main(args + extra)
            logging.getLogger().removeHandler(handler)
            text = err.getvalue()
            message = first_error(text).replace(tmp, "…").replace("|", "\\|")
            rows.append(f"| {name} | {code} | {'yes' if 'Traceback' in text else 'no'} | {message} |")
            print(rows[-1], file=sys.stderr)
    header = ("# What skinbench says to bad input\n\nGenerated by `docs/bad_input_catalogue.py` "
              "(each case runs `skinbench run`; `…` is the temporary folder).\n\n"
              "| bad input | exit | traceback | message (first line) |\n|---|---|---|---|\n")
    return header + "\n".join(rows) + "\n"


if __name__ == "__main__":
    os.environ.setdefault("SKINBENCH_CACHE", tempfile.mkdtemp())
    page = main_catalogue()
    (Path(__file__).parent / "errors.md").write_text(page)
    print(page)
