"""The published leaderboard: a static site (HTML, SVG/PNG figures, downloads) from run directories."""
from .build import Published, publish

__all__ = ["Published", "publish"]
