"""Seconds per cell of skinbench's ``logreg`` and ``mlp`` heads against the same recipes written
directly in scikit-learn and torch, on SCIN-sized cached features.

The features are synthetic but shaped like SCIN's: 10,000 × 768 float32 embeddings of 3,400
patients and 5 classes with skewed priors (class centres + a per-patient offset + noise), split
patient-disjoint like the protocol (20 % of the patients for test, 1/8 of the rest for validation).
One cell = fit on the fit part with validation for model selection, then predict the test part.
Runs are interleaved so drifts in machine load hit all alike; medians are reported.

The bare recipes run with the threads the heads use (one BLAS/OpenMP thread, one torch thread),
so a ratio measures skinbench's code rather than a thread count; ``--bare-threads default`` leaves
the libraries at their own defaults instead. Prints seconds per cell, each head's
``bare / skinbench`` ratio (1.0 = as fast as the direct recipe), a sanity check that both sides
compute the same thing, and as its LAST line ``ratio=<min of the head ratios>`` (goal >= 0.9).

    python benchmarks/heads_throughput.py            # SCIN size, 3 repeats (a few minutes on 2 cores)
    python benchmarks/heads_throughput.py --quick    # 2,000 images, 2 repeats: a smoke test
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import time
import warnings

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from torch import nn

from skinbench.api import Part
from skinbench.configuration.registry import load_catalogue

PRIORS = (0.40, 0.25, 0.15, 0.12, 0.08)


def scin_like_parts(n: int, dim: int, n_patients: int, seed: int = 0) -> tuple[Part, Part, Part]:
    """Fit, validation and test parts of synthetic embeddings with class signal and patient effects."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_patients, n)
    y = rng.choice(len(PRIORS), size=n, p=PRIORS)
    centres = rng.normal(0.0, 0.05, (len(PRIORS), dim))
    patient_offsets = rng.normal(0.0, 0.5, (n_patients, dim))
    x = (rng.normal(0.0, 1.0, (n, dim)) + centres[y] + patient_offsets[groups]).astype(np.float32)
    patients = rng.permutation(n_patients)
    n_test = n_patients // 5
    test_patients, rest = patients[:n_test], patients[n_test:]
    val_patients = rest[: len(rest) // 8]
    part_of = np.where(np.isin(groups, test_patients), 2, np.where(np.isin(groups, val_patients), 1, 0))

    def part(index: int) -> Part:
        rows = np.flatnonzero(part_of == index)
        return Part(paths=[f"img{i}.png" for i in rows], y=y[rows], groups=groups[rows], x=x[rows])

    return part(0), part(1), part(2)


# ------------------------------------------------------- the recipes written directly
def bare_logreg(train: Part, val: Part, test: Part, seed: int, C_grid=(0.5, 1.0, 2.0), max_pca: int = 256):
    """Seed 000 Table 4.1 in plain scikit-learn: scaler + whitened PCA once, one LR per C, best C on validation."""
    features = make_pipeline(StandardScaler(), PCA(n_components=min(train.x.shape[1], len(train) - 1, max_pca),
                                                   whiten=True, random_state=seed))
    z_train, z_val = features.fit_transform(train.x), features.transform(val.x)
    models = [LogisticRegression(C=C, max_iter=300, class_weight="balanced", random_state=seed).fit(z_train, train.y)
              for C in C_grid]
    best = max(models, key=lambda m: f1_score(val.y, m.predict(z_val), average="macro", zero_division=0))
    return best.predict_proba(features.transform(test.x))


def bare_mlp(train: Part, val: Part, test: Part, seed: int, epochs: int = 50, batch_size: int = 16):
    """Seed 004's MLP in plain torch: 128 hidden, dropout 0.3, Adam 1e-4, best epoch on validation."""
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    mean, std = train.x.mean(axis=0), train.x.std(axis=0)
    x_train, x_val, x_test = (torch.as_tensor((p.x - mean) / std) for p in (train, val, test))
    y_train = torch.as_tensor(train.y)
    net = nn.Sequential(nn.Linear(x_train.shape[1], 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, len(PRIORS)))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=1e-5)
    loss_fn = nn.CrossEntropyLoss()
    best_score, best_state = -1.0, None
    for _ in range(epochs):
        net.train()
        for batch in torch.randperm(len(x_train), generator=order).split(batch_size):
            optimiser.zero_grad()
            loss_fn(net(x_train[batch]), y_train[batch]).backward()
            optimiser.step()
        net.eval()
        with torch.no_grad():
            score = f1_score(val.y, net(x_val).argmax(dim=1).numpy(), average="macro", zero_division=0)
        if score >= best_score:
            best_score, best_state = score, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    with torch.no_grad():
        return torch.softmax(net(x_test), dim=1).numpy()


@contextlib.contextmanager
def threads(setting: str):
    """``one``: the heads' own setting (one BLAS/OpenMP and one torch thread); ``default``: the libraries' defaults."""
    if setting == "default":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


# ------------------------------------------------------------------------- timing
def skinbench_cell(head, parts: tuple[Part, Part, Part], seed: int):
    """What the runner does per cell with the suite's head instance: fit, then predict the test part."""
    train, val, test = parts
    head.fit(train, val, len(PRIORS), seed)
    return head.predict(test).proba


def timed_medians(runners: dict, parts: tuple[Part, Part, Part], repeats: int,
                  warm_up_parts: tuple[Part, Part, Part]) -> tuple[dict[str, float], dict]:
    """Median seconds of each runner over interleaved repeats, and each runner's last output.
    Each runner first runs once on ``warm_up_parts``, so lazy imports and first-call setup are not timed."""
    for run in runners.values():
        run(warm_up_parts)
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    outputs = {}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            outputs[name] = run(parts)
            seconds[name].append(time.perf_counter() - start)
    return {name: float(np.median(s)) for name, s in seconds.items()}, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="images (rows of cached features)")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--patients", type=int, default=3_400)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed runs per side; medians reported")
    parser.add_argument("--quick", action="store_true", help="2,000 images of 680 patients, 2 repeats")
    parser.add_argument("--bare-threads", choices=("one", "default"), default="one")
    parser.add_argument("--heads", nargs="+", choices=("logreg", "mlp"), default=["logreg", "mlp"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.n, args.patients, args.repeats = 2_000, 680, 2
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    parts = scin_like_parts(args.n, args.dim, args.patients)
    test = parts[2]
    catalogue = load_catalogue(autoload=False)
    logreg, mlp = catalogue.create("head", "logreg"), catalogue.create("head", "mlp", {"device": "cpu"})

    def bare(recipe):
        def run(cell_parts):
            with threads(args.bare_threads):
                return recipe(*cell_parts, args.seed)
        return run

    runners = {
        "skinbench logreg": lambda cell_parts: skinbench_cell(logreg, cell_parts, args.seed),
        "bare logreg": bare(bare_logreg),
        "skinbench mlp": lambda cell_parts: skinbench_cell(mlp, cell_parts, args.seed),
        "bare mlp": bare(bare_mlp),
    }
    runners = {name: run for name, run in runners.items() if name.split()[1] in args.heads}
    seconds, proba = timed_medians(runners, parts, args.repeats, scin_like_parts(400, args.dim, 136, seed=1))
    print(f"features {args.n} x {args.dim}, {args.patients} patients, {len(PRIORS)} classes; "
          f"fit {len(parts[0])} / val {len(parts[1])} / test {len(test)}; repeats={args.repeats} (medians); "
          f"bare threads: {args.bare_threads}; torch threads available: {torch.get_num_threads()}")
    ratios = {}
    for head in args.heads:
        ours, theirs = seconds[f"skinbench {head}"], seconds[f"bare {head}"]
        ratios[head] = theirs / ours
        f1 = {side: f1_score(test.y, proba[f"{side} {head}"].argmax(axis=1), average="macro")
              for side in ("skinbench", "bare")}
        print(f"{head}: skinbench {ours:.2f} s/cell, bare {theirs:.2f} s/cell, ratio {ratios[head]:.3f}; "
              f"test macro-F1 skinbench {f1['skinbench']:.3f}, bare {f1['bare']:.3f}")
    if "logreg" in args.heads:
        gap = np.abs(proba["skinbench logreg"] - proba["bare logreg"]).max()
        print(f"logreg max |probability difference| skinbench vs bare: {gap:.2e}")
    print(f"ratio={min(ratios.values()):.3f}")


if __name__ == "__main__":
    main()
