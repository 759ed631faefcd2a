"""Image I/O with errors that name the file."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .api import DataError

UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError)
"""What PIL raises for a file that exists but is not a decodable image."""


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as RGB; a missing or corrupt file raises :class:`DataError` naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise DataError([f"{path}: image file is missing"]) from None
    except UNREADABLE as exc:
        raise DataError([f"{path}: image cannot be read ({exc.__class__.__name__}: {exc})"]) from None


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
    except UNREADABLE as exc:
        return f"image cannot be read ({exc.__class__.__name__})"
