"""Hook specifications: the only way the runner learns about plugins.

Each hook returns a list of plugin *classes* of one kind. Built-in plugins and
third-party packages (entry point group ``skinbench``) implement the same hooks,
so a built-in backbone is no different from one a user pip-installs.
"""
from __future__ import annotations

import pluggy

PROJECT = "skinbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def skinbench_backbones() -> list[type]:
    """Return the :class:`skinbench.api.Backbone` subclasses this plugin provides.

    Called once when the plugin manager is built. A backbone turns images into
    fixed-length embeddings (or exposes a trainable network to image heads).
    """


@hookspec
def skinbench_augmenters() -> list[type]:
    """Return the :class:`skinbench.api.Augmenter` subclasses this plugin provides.

    An augmenter adds synthetic rows to the *training part* of one task; the
    runner guarantees it never sees validation or test images.
    """


@hookspec
def skinbench_heads() -> list[type]:
    """Return the :class:`skinbench.api.Head` subclasses this plugin provides.

    A head is fitted on the training part, selects its hyper-parameters on the
    validation part, and predicts class probabilities for the test part.
    """


@hookspec
def skinbench_datasets() -> list[type]:
    """Return the :class:`skinbench.api.Dataset` subclasses this plugin provides.

    A dataset yields one or more :class:`skinbench.api.Task` tables of samples.
    """
