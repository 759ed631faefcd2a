"""Helpers shared by the torch-trained heads (``mlp``, ``finetune``): seeding, class weights,
loss scaling, best-epoch weights, one CPU thread. Device and precision choices come from
:mod:`skinbench.devices`, as for backbones. Leading underscore: not a plugin module."""
from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

import numpy as np
from skinbench.sdk import cpu_threads

if TYPE_CHECKING:
    import torch
    from torch import nn


def seeded_generator(seed: int) -> torch.Generator:
    """Seed torch's global RNG (weight init, dropout, transforms) and return a
    separate generator for data order, so both are reproducible from one seed."""
    import torch

    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def balanced_class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """sklearn's ``class_weight='balanced'`` (n / (k * n_c)) over the k classes present;
    absent classes get weight 0 since no sample of theirs reaches the loss."""
    import torch

    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.as_tensor(weights, dtype=torch.float32)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """Loss scaling is needed for fp16 autocast only; otherwise the scaler is a pass-through."""
    import torch

    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def fused_optimiser_supported(device: torch.device) -> bool:
    """Whether Adam/AdamW may run ``fused=True``: one kernel per parameter instead of a dozen small
    ops. On one CPU thread it halves the MLP head's optimiser step (0.44 -> 0.21 s per epoch of
    441 steps, 7,044 x 768 features), a fifth of its training time. The update is element-wise,
    so it does not depend on the thread count."""
    return device.type in ("cpu", "cuda")


@contextlib.contextmanager
def single_cpu_thread(device: torch.device):
    """Run tiny CPU models on one thread: their ops are too small to split, and intra-op
    threads then only add synchronisation (measured for the MLP head on a busy 2-core
    machine: 46 s with two threads, about 2 s with one). One thread also makes results
    independent of the caller's ``torch.set_num_threads``. Restores the previous setting;
    a no-op off the CPU."""
    with cpu_threads(1, device):
        yield


class BestWeights:
    """Copies of the tensors training can change (trainable modules' parameters and buffers),
    taken at the best validation score, so the best epoch can be restored without copying
    a frozen ViT-L every time. A tie takes the later, longer-trained epoch (tiny validation
    parts tie often) but, not being an improvement, does not reset the patience count."""

    def __init__(self, modules: list[nn.Module]):
        self.tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
        self.score, self.saved, self.epochs_since_best = -math.inf, None, 0

    def offer(self, score: float) -> None:
        self.epochs_since_best = 0 if score > self.score else self.epochs_since_best + 1
        if score >= self.score:
            self.score = score
            self.saved = [t.detach().to("cpu", copy=True) for t in self.tensors]

    def restore(self) -> None:
        import torch

        if self.saved is None:
            return
        with torch.no_grad():
            for tensor, saved in zip(self.tensors, self.saved):
                tensor.copy_(saved)
