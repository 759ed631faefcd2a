"""Locating and reading model weights without unpickling arbitrary objects."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from skinbench.sdk import ConfigError, file_digest

if TYPE_CHECKING:
    import torch

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".bin", ".pt")
WRAPPER_KEYS = ("model", "module", "state_dict")


def weights_file(location: str | Path, plugin: str) -> Path:
    """The weights file at ``location``: the file itself, or the single weights file in a folder
    (``model.safetensors`` wins when a folder holds several)."""
    path = Path(location).expanduser()
    if path.is_file():
        return path
    if not path.exists():
        raise ConfigError(f"backbone '{plugin}': weights path {path} does not exist")
    candidates = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    preferred = [p for p in candidates if p.name == "model.safetensors"]
    if preferred:
        return preferred[0]
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise ConfigError(
            f"backbone '{plugin}': folder {path} must hold exactly one weights file "
            f"({'/'.join(WEIGHT_SUFFIXES)}); found: {found}. Point 'weights' at the file."
        )
    return candidates[0]


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file, or from a torch file loaded with ``weights_only=True``;
    a checkpoint wrapped under 'model', 'module' or 'state_dict' is unwrapped."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        raise ConfigError(f"{path}: cannot be read as torch weights with weights_only=True ({exc})") from None
    for key in WRAPPER_KEYS:
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    return checkpoint


def file_identity(path: Path) -> dict[str, str]:
    """Weights enter cache keys by content, so a renamed copy still hits and an edited file misses."""
    return {"file": path.name, "sha256": file_digest(path)}


def load_strict(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with an error that lists every missing and unexpected key."""
    result = module.load_state_dict(state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ConfigError(
            f"{source}: weights do not match the model; missing keys: {result.missing_keys or 'none'}; "
            f"unexpected keys: {result.unexpected_keys or 'none'}"
        )
