"""Helpers shared by the torch-trained heads (``mlp``, ``finetune``): seeding, class weights,
loss scaling. Device and precision choices come from :mod:`skinbench.devices`, as for backbones.
Leading underscore: not a plugin module."""
from __future__ import annotations

import contextlib

import numpy as np
import torch


def seeded_generator(seed: int) -> torch.Generator:
    """Seed torch's global RNG (weight init, dropout, transforms) and return a
    separate generator for data order, so both are reproducible from one seed."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def balanced_class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """sklearn's ``class_weight='balanced'`` (n / (k * n_c)) over the k classes present;
    absent classes get weight 0 since no sample of theirs reaches the loss."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.as_tensor(weights, dtype=torch.float32)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """Loss scaling is needed for fp16 autocast only; otherwise the scaler is a pass-through."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


@contextlib.contextmanager
def single_cpu_thread(device: torch.device):
    """Run tiny CPU models on one thread: their ops are too small to split, and intra-op
    threads then only add synchronisation (measured for the MLP head on a busy 2-core
    machine: 46 s with two threads, about 2 s with one). Restores the previous setting; a no-op off the CPU."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
