"""Shared Stable Diffusion fixtures: a tiny random-init pipeline per test module (built by skinbench.testing)."""
from __future__ import annotations

import pytest
import torch

from skinbench.testing import build_tiny_sd

@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: thread hand-offs cost more than the maths (40x slower on a busy 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    """A tiny Stable Diffusion folder, built once per test module."""
    return str(build_tiny_sd(tmp_path_factory.mktemp("tiny_sd")))
