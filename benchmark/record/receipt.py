"""The environment receipt kept beside the results: what produced them."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import subprocess
from datetime import datetime, timezone
from pathlib import Path

PACKAGES = ("skinbench", "torch", "torchvision", "timm", "diffusers", "transformers", "scikit-learn", "scipy",
            "statsmodels", "numpy", "pandas", "pluggy", "pydantic", "dask", "distributed", "lpips", "pillow")


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def device_description() -> str:
    """The accelerator torch would use, else the CPU (answered without importing torch on a machine with no GPU)."""
    from skinbench.devices import no_gpu_here

    if no_gpu_here():
        return f"cpu ({os.cpu_count()} cores)"
    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return f"cpu ({os.cpu_count()} cores)"


def torch_threads() -> int:
    """torch's intra-op threads: summation order, hence the last bits of an embedding, can depend on them.

    Asked of torch when this process has imported it; otherwise the value torch would choose, from what it
    reads (``OMP_NUM_THREADS``, else the CPUs this process may use), so a run that needs no torch (a finished
    rerun) does not import it to write its receipt."""
    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    configured = os.environ.get("OMP_NUM_THREADS", "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else len(os.sched_getaffinity(0))


def versions(packages=PACKAGES) -> dict[str, str | None]:
    out = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def receipt(catalogue=None, plugins: dict | None = None) -> dict:
    """Versions, commit, device and time; with a catalogue, every plugin found (third-party ones with their
    package and version) and the resolved identity of each plugin the suite uses."""
    out = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "device": device_description(),
        "torch_threads": torch_threads(),
        "packages": versions(),
    }
    if catalogue is not None:
        out["plugins_found"] = [{k: r[k] for k in ("kind", "name", "version", "package", "source")}
                                for r in catalogue.rows()]
    if plugins is not None:
        out["plugins_used"] = {key: [p.identity.record() for p in instances] for key, instances in plugins.items()}
    return out
