"""The plugin SDK: everything a backbone, augmenter, head or dataset plugin may import from skinbench.

A plugin, built-in or third-party, imports from here (``from skinbench.sdk import Backbone, hookimpl``)
and nowhere else in the core, so the core can move its modules without breaking plugins; a test
checks that no built-in plugin reaches past it. What is here:

- the contract: the four plugin bases, typed ``PluginParams`` and ``PluginMeta``, the data types a
  plugin receives and returns (``Task``, ``Part``, ``Prediction``), the errors, and ``hookimpl``;
- images: decoding exactly as the core does, and what is wrong with an unreadable file;
- devices and precision: ``device: auto`` resolution, autocast, thread limits;
- torch backbones: ``TorchBackbone`` (typed params, batching, TTA, on-device preprocessing, pooled
  features) and ``Preprocess``, which the fine-tuning head reuses for any torch backbone;
- vision-language: ``VisionLanguageBackbone`` and ``ImageTower`` (CLIP-style backbones with
  ``embed_text``), the ``TextBackbone`` capability, ``ClassNames``, and class prompt files turned
  into class embeddings (``read_prompts``, ``class_embeddings``);
- files: atomic writes, content digests, the embedding cache folder, YAML files of mappings, hub
  weights that fail fast offline;
- augmentation: the shared oversampling rule, cache keys of synthetic images, quality metrics and
  their thresholds; heads: the decision rule (temperature, threshold) and macro-F1.
"""
from __future__ import annotations

import importlib
from typing import Any

_SOURCES: dict[str, tuple[str, ...]] = {
    "skinbench.api": ("SAMPLE_COLUMNS", "SUBGROUP_COLUMNS", "Augmenter", "Backbone", "ClassNames", "ConfigError",
        "DataError", "Dataset", "Head", "Part", "Plugin", "PluginError", "PluginMeta", "PluginParams", "Prediction",
        "SkinbenchError", "Task", "TextBackbone", "TrainableBackbone", "label_key"),
    "skinbench.atomic": ("atomic_write", "atomic_write_json"),
    "skinbench.execution.cache": ("default_cache_dir",),
    "skinbench.calibration": ("DecisionRule", "macro_f1", "softmax"),
    "skinbench.class_text": ("ClassPrompts", "class_embeddings", "prompts_digest", "read_prompts", "unit_rows"),
    "skinbench.devices": ("DeviceName", "PrecisionName", "autocast", "cpu_threads", "device_type", "precision_label",
        "precision_name",
        "resolve_device", "resolve_precision", "to_device"),
    "skinbench.data.groups": ("linked_groups",),
    "skinbench.hashing": ("config_hash", "file_digest"),
    "skinbench.hookspecs": ("hookimpl",),
    "skinbench.hub": ("hub_file", "hub_revision", "hub_snapshot"),
    "skinbench.record.identity": ("augmentation_key",),
    "skinbench.images": ("image_problem", "jpeg_bytes", "load_rgb", "load_uint8", "rgb_tensor"),
    "skinbench.oversampling": ("POLICIES", "assign_sources", "synthetic_counts"),
    "skinbench.preprocess": ("INTERPOLATIONS", "Preprocess"),
    "skinbench.quality": ("QUALITY_COLUMNS", "LpipsScorer", "quality_metrics", "specular_coverage",
        "trunk_weights_file"),
    "skinbench.quality_control": ("QualityThresholds", "qc_failures"),
    "skinbench.configuration.suite": ("read_yaml_mapping",),
    "skinbench.torch_backbone": ("PoolName", "TorchBackbone", "TorchParams", "timm_pool"),
    "skinbench.torch_modules": ("ImageTower", "PooledFeatures"),
    "skinbench.text_backbone": ("LOCAL_HINT", "Preset", "VisionLanguageBackbone", "folder_identity"),
}
"""Where each name lives. Names are imported on first use (PEP 562), so registering plugins or
reading their parameters imports neither torch nor scikit-learn (the modules import those where they compute)."""
_HOME = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = [
    "SAMPLE_COLUMNS", "SUBGROUP_COLUMNS", "Augmenter", "Backbone", "ConfigError", "DataError", "Dataset", "Head",
    "Part", "Plugin", "PluginError", "PluginMeta", "PluginParams", "Prediction", "SkinbenchError", "Task",
    "TrainableBackbone", "label_key", "hookimpl",
    "ClassNames", "ClassPrompts", "ImageTower", "LOCAL_HINT", "Preset", "TextBackbone", "VisionLanguageBackbone",
    "class_embeddings",
    "folder_identity", "prompts_digest", "read_prompts", "unit_rows",
    "image_problem", "jpeg_bytes", "load_rgb", "load_uint8", "rgb_tensor",
    "DeviceName", "PrecisionName", "autocast", "cpu_threads", "device_type", "precision_label", "precision_name",
    "resolve_device",
    "resolve_precision", "to_device",
    "INTERPOLATIONS", "PoolName", "PooledFeatures", "Preprocess", "TorchBackbone", "TorchParams", "timm_pool",
    "atomic_write", "atomic_write_json", "config_hash", "default_cache_dir", "file_digest", "hub_file",
    "hub_revision", "hub_snapshot", "linked_groups", "read_yaml_mapping",
    "POLICIES", "assign_sources", "augmentation_key", "synthetic_counts", "QUALITY_COLUMNS", "LpipsScorer",
    "QualityThresholds", "qc_failures", "quality_metrics", "specular_coverage", "trunk_weights_file",
    "DecisionRule", "macro_f1", "softmax",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'skinbench.sdk' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain global
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
