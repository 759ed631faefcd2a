"""Image I/O with errors that name the file."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from skinbench.api import DataError

if TYPE_CHECKING:  # torch is imported where tensors are made: dataset checks need only PIL
    import torch

UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError)
"""What PIL raises for a file that exists but is not a decodable image (or too large to decode safely)."""


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as RGB; a missing or corrupt file raises :class:`DataError` naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise DataError([f"{path}: image file is missing"]) from None
    except UNREADABLE as exc:
        raise DataError([f"{path}: image cannot be read ({exc.__class__.__name__}: {exc})"]) from None


def load_uint8(path: str | Path) -> torch.Tensor:
    """The image as a (3, H, W) uint8 tensor, decoded exactly as :func:`load_rgb` decodes it."""
    return rgb_tensor(load_rgb(path))


def rgb_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image as a (3, H, W) uint8 tensor (the layout torch image ops expect)."""
    import torch

    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)


JPEG_MAGIC = b"\xff\xd8\xff"


def jpeg_bytes(path: str | Path) -> torch.Tensor | None:
    """The file's bytes as a 1-D uint8 tensor when it is a JPEG (for GPU decoding), else None."""
    import torch

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError([f"{path}: image file is missing"]) from None
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data.startswith(JPEG_MAGIC) else None


def image_problem(path: str | Path) -> str | None:
    """Return a description of what is wrong with an image file, or None if it decodes.

    Memoised on (path, size, mtime): dataset readers and the runner both check, but each file is read once."""
    try:
        stat = Path(path).stat()
    except FileNotFoundError:
        return "image file is missing"
    return _image_problem(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=200_000)
def _image_problem(path: str, size: int, mtime_ns: int) -> str | None:
    try:
        with Image.open(path) as img:
            img.verify()
        return None
    except FileNotFoundError:
        return "image file is missing"
    except Image.DecompressionBombError as exc:
        return f"image is too large to decode safely ({exc}); downscale it"
    except UNREADABLE as exc:
        return f"image cannot be read ({exc.__class__.__name__})"
