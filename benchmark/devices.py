"""Where torch work runs, and at which precision.

Device and precision are runtime parameters of a plugin (they change how fast a result
comes), but the device type and precision actually used can change results, so every
plugin reports them in ``artefacts()`` and they enter its identity. torch is imported where it is
used: on a machine with no GPU, :func:`device_type` and :func:`precision_label` answer without it, so
resolving identities (every run, even one with nothing to compute) does not pay for importing torch.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator

from skinbench.api import ConfigError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/dev/kfd")
"""Device files of the NVIDIA driver, of WSL's GPU bridge and of ROCm: a Linux machine without any of
them has no GPU torch could use."""


def _known_device(name: str) -> str:
    base, _, index = name.partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        raise ValueError(f"device '{name}' is unknown; use one of {', '.join(DEVICES)} (or cuda:N)")
    return name


DeviceName = Annotated[str, AfterValidator(_known_device)]
"""A ``device`` parameter: auto, cpu, cuda, cuda:N or mps (availability is checked when resolved)."""

PrecisionName = Literal[PRECISIONS]
"""A ``precision`` parameter: auto (bf16, else fp16, autocast on CUDA; fp32 elsewhere), fp32, fp16, bf16."""


def no_gpu_here() -> bool:
    """True when this is Linux with no GPU device file: CUDA (and ROCm) cannot be available, and MPS is
    Apple's. Elsewhere, or when a device file exists, only torch can tell."""
    return sys.platform.startswith("linux") and not any(os.path.exists(path) for path in GPU_DEVICE_FILES)


def device_type(name: str = "auto") -> str:
    """The type of device :func:`resolve_device` picks (cpu, cuda, mps); without importing torch when
    the answer is the CPU and no GPU is present."""
    if str(name) == "cpu" or (str(name) == "auto" and no_gpu_here()):
        return "cpu"
    return resolve_device(name).type


def precision_label(precision: str, device: str) -> str:
    """How the precision resolved on a device type is recorded (float32, float16, bfloat16), as
    ``precision_name(resolve_precision(precision, device))``; without torch except for ``auto`` on CUDA."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision '{precision}' is unknown; use one of {', '.join(PRECISIONS)}")
    if precision == "auto" and device == "cuda":
        import torch

        return precision_name(resolve_precision(precision, torch.device("cuda")))
    return DTYPE_NAMES.get(precision, "float32")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; an unavailable explicit choice is an error."""
    import torch

    base = str(name).split(":")[0]
    if base not in DEVICES:
        raise ConfigError(f"device '{name}' is unknown; use one of {', '.join(DEVICES)} (cuda:N is accepted)")
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' was requested but CUDA is not available; use device: auto or cpu")
    if base == "mps" and not _mps_available():
        raise ConfigError(f"device '{name}' was requested but Apple MPS is not available; use device: auto or cpu")
    return torch.device(name)


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32. ``auto`` means bf16 (else fp16) on CUDA, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision '{precision}' is unknown; use one of {', '.join(PRECISIONS)}")
    import torch

    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, DTYPE_NAMES[precision]) if precision != "fp32" else None


def precision_name(dtype: torch.dtype | None) -> str:
    """How a resolved precision is recorded in identities: float32, bfloat16 or float16."""
    return str(dtype).removeprefix("torch.") if dtype is not None else "float32"


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision on ``device`` when ``dtype`` is set, otherwise a no-op context."""
    if dtype is None:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy to ``device`` without blocking the host: from pinned memory, CUDA copies are asynchronous."""
    if tensor.device == device:
        return tensor
    if device.type == "cuda" and not tensor.is_pinned():
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=device.type == "cuda")


@contextlib.contextmanager
def cpu_threads(count: int, device: torch.device | str = "cpu"):
    """torch's intra-op thread count at ``count`` while work runs on the CPU, restored afterwards;
    a no-op on other devices. A CPU result can depend on the thread count (sums split differently),
    so callers fix it rather than inherit whatever the process was given."""
    import torch

    if torch.device(device).type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def machine_cores() -> int:
    """The cores this process may run on (its affinity where the OS reports one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
