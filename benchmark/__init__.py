"""skinbench: which backbone, augmentation and head beat chance on *your* skin images.

Importable as ``skinbench``; the source folder is ``benchmark/``.
"""
__version__ = "0.1.0"
