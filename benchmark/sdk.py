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

from skinbench.api import (
    SAMPLE_COLUMNS,
    SUBGROUP_COLUMNS,
    Augmenter,
    Backbone,
    ClassNames,
    ConfigError,
    DataError,
    Dataset,
    Head,
    Part,
    Plugin,
    PluginError,
    PluginMeta,
    PluginParams,
    Prediction,
    SkinbenchError,
    Task,
    TextBackbone,
    TrainableBackbone,
    label_key,
)
from skinbench.atomic import atomic_write, atomic_write_json
from skinbench.execution.cache import default_cache_dir
from skinbench.calibration import DecisionRule, macro_f1, softmax
from skinbench.class_text import ClassPrompts, class_embeddings, prompts_digest, read_prompts, unit_rows
from skinbench.devices import (
    DeviceName,
    PrecisionName,
    autocast,
    cpu_threads,
    precision_name,
    resolve_device,
    resolve_precision,
    to_device,
)
from skinbench.data.groups import linked_groups
from skinbench.hashing import config_hash, file_digest
from skinbench.hookspecs import hookimpl
from skinbench.hub import hub_file, hub_revision, hub_snapshot
from skinbench.record.identity import augmentation_key
from skinbench.images import image_problem, jpeg_bytes, load_rgb, load_uint8, rgb_tensor
from skinbench.oversampling import POLICIES, assign_sources, synthetic_counts
from skinbench.preprocess import INTERPOLATIONS, Preprocess
from skinbench.quality import QUALITY_COLUMNS, LpipsScorer, quality_metrics, specular_coverage, trunk_weights_file
from skinbench.quality_control import QualityThresholds, qc_failures
from skinbench.configuration.suite import read_yaml_mapping
from skinbench.torch_backbone import PooledFeatures, PoolName, TorchBackbone, TorchParams, timm_pool
from skinbench.text_backbone import ImageTower, VisionLanguageBackbone, folder_identity

__all__ = [
    "SAMPLE_COLUMNS", "SUBGROUP_COLUMNS", "Augmenter", "Backbone", "ConfigError", "DataError", "Dataset", "Head",
    "Part", "Plugin", "PluginError", "PluginMeta", "PluginParams", "Prediction", "SkinbenchError", "Task",
    "TrainableBackbone", "label_key", "hookimpl",
    "ClassNames", "ClassPrompts", "ImageTower", "TextBackbone", "VisionLanguageBackbone", "class_embeddings",
    "folder_identity", "prompts_digest", "read_prompts", "unit_rows",
    "image_problem", "jpeg_bytes", "load_rgb", "load_uint8", "rgb_tensor",
    "DeviceName", "PrecisionName", "autocast", "cpu_threads", "precision_name", "resolve_device",
    "resolve_precision", "to_device",
    "INTERPOLATIONS", "PoolName", "PooledFeatures", "Preprocess", "TorchBackbone", "TorchParams", "timm_pool",
    "atomic_write", "atomic_write_json", "config_hash", "default_cache_dir", "file_digest", "hub_file",
    "hub_revision", "hub_snapshot", "linked_groups", "read_yaml_mapping",
    "POLICIES", "assign_sources", "augmentation_key", "synthetic_counts", "QUALITY_COLUMNS", "LpipsScorer",
    "QualityThresholds", "qc_failures", "quality_metrics", "specular_coverage", "trunk_weights_file",
    "DecisionRule", "macro_f1", "softmax",
]
