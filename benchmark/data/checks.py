"""Checks of one task and its splits: the problems that stop a run, and the warnings that do not."""
from __future__ import annotations

import math
from typing import Any

from skinbench.api import SAMPLE_COLUMNS, Task
from skinbench.atomic import utf8_problem
from skinbench.data.protocol import Protocol, TestPart
from skinbench.images import image_problem
from skinbench.vocabulary import MIN_TEST_IMAGES

MISSING_VALUES = frozenset({"", "nan", "none", "null", "na", "n/a"})
"""Label or patient values that mean "not filled in" (compared case-insensitively)."""

def task_problems(task: Task) -> list[str]:
    """Missing columns, empty or degenerate tasks, missing or unknown labels and patient ids, unreadable images."""
    where = f"dataset '{task.dataset}', task '{task.name}'"
    df = task.samples
    missing = [c for c in SAMPLE_COLUMNS if c not in df]
    if missing:
        return [f"{where}: missing column(s) {missing}; present: {list(df.columns)}"]
    if df.empty:
        return [f"{where}: the task has no samples"]
    problems = []
    if len(task.classes) < 2:
        problems.append(f"{where}: declares {len(task.classes)} class(es) {task.classes}; a task needs at least 2")
    known = set(task.classes)
    for row, label in enumerate(df["label"]):
        if is_missing(label):
            problems.append(f"{task.where(row)}: label {label!r} looks like a missing value; leave the cell empty "
                            f"(such rows are left out of task '{task.name}') or give the real label")
        elif label not in known:
            problems.append(f"{task.where(row)}: label {label!r} is not one of the declared classes {task.classes}")
    empty_groups = [task.where(row) for row, g in enumerate(df["group"]) if is_missing(g)]
    if empty_groups:
        problems.append(f"{where}: the patient id is empty or NaN in {_rows(empty_groups)}; every image needs "
                        "the id of its patient (they would otherwise be pooled into one patient)")
    counts = df["label"].value_counts()
    problems += [f"{where}: class {c!r} has no samples; drop it from the classes or fix the label map"
                 for c in task.classes if counts.get(c, 0) == 0]
    patients = df["group"].astype(str).nunique()
    if patients < 3:
        problems.append(f"{where}: only {patients} patient(s); a patient-disjoint test split plus a validation fold "
                        "needs at least 3")
    for row, path in enumerate(df["image"]):
        why = utf8_problem(path, "the image path") or image_problem(path)
        if why:
            problems.append(f"{task.where(row)}: {path}: {why}")
    return problems


def is_missing(value: Any) -> bool:
    """None, NaN, and text such as '', 'NaN', 'nan', 'None' or 'NA' all mean "not filled in"."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_VALUES


def _rows(rows: list) -> str:
    shown = ", ".join(map(str, rows[:10]))
    return shown + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def split_problems(task: Task, splits: dict[TestPart, list[str]], where: str, protocol: Protocol) -> list[str]:
    """Each test part must hold test images and leave at least two training patients (for the validation fold)."""
    problems = []
    groups = task.samples["group"].astype(str)
    fix = "lower protocol.folds or add patients" if protocol.cv else "raise test_fraction or add patients"
    for part, test in splits.items():
        is_test = groups.isin(test)
        train_patients = groups[~is_test].nunique()
        name = protocol.part_name(part)
        if not is_test.any():
            problems.append(f"{where}, task '{task.name}', {name}: no test image; {fix}")
        if train_patients < 2:
            problems.append(f"{where}, task '{task.name}', {name}: {train_patients} training patient(s); "
                            "the validation fold needs at least 2")
    return problems


def left_out_warnings(task: Task, where: str) -> list[str]:
    """One line per rule that left rows out of the task (an empty label, a missing image...), with the first rows."""
    lines = []
    for reason, (count, first) in task.left_out.items():
        shown = f": {', '.join(first)}{' …' if count > len(first) else ''}" if first else ""
        lines.append(f"{where}, task '{task.name}': {count} row(s) left out ({reason}){shown}")
    return lines


def class_counts(task: Task, test_groups: list[str]) -> dict[Any, dict[str, int]]:
    """Images per class on each side of one split."""
    is_test = task.samples["group"].astype(str).isin(test_groups)
    return {c: {"train": int(((task.samples["label"] == c) & ~is_test).sum()),
                "test": int(((task.samples["label"] == c) & is_test).sum())} for c in task.classes}


def class_warnings(task: Task, splits: dict[TestPart, list[str]], where: str, protocol: Protocol) -> list[str]:
    """Algorithm 1 can put every image of a rare class into the test part: say so.

    Under cv a fold's handful of test images of a class is expected (every patient is tested once,
    and the verdicts pool the folds), so only a class without training images is worth a warning."""
    warnings = []
    for part, test in splits.items():
        for cls, n in class_counts(task, test).items():
            split = f", {protocol.part_name(part)}" if len(splits) > 1 else ""
            if n["train"] == 0:
                warnings.append(f"{where}, task '{task.name}'{split}: class {cls!r} has no training image "
                                f"({n['test']} in test); no head can learn it")
            elif n["test"] < MIN_TEST_IMAGES and not protocol.cv:
                warnings.append(f"{where}, task '{task.name}'{split}: class {cls!r} has {n['test']} test image(s); "
                                "its F1 is mostly noise")
    return warnings
