"""Stable Diffusion augmentation shared by ``sd-img2img``, ``sd-text2img`` and ``sd-inpaint``.

The recipe is seed 000 section 4.2: per (task, class) bucket oversampling, prompts from an
editable YAML file, per-task parameter ranges with jitter, per-task scheduler and optional
CLAHE, and quality metrics logged for every image (thresholds optional). Every image has a
seed derived from (run seed, source content, index) and is cached on disk under a key of
source content, model identity, prompts and parameters, so a rerun calls no pipeline and a
fully cached rerun does not even load the model.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import yaml
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from skinbench.api import Augmenter, ConfigError, Task
from skinbench.atomic import atomic_write, atomic_write_json
from skinbench.hashing import config_hash, file_digest
from skinbench.images import load_rgb
from skinbench.oversampling import assign_sources, synthetic_counts
from skinbench.quality import LpipsScorer, blur_ratio, specular_coverage, ssim
from skinbench.suite import read_yaml_mapping

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SCHEDULERS = {
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "dpm_multistep": "DPMSolverMultistepScheduler",
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
}
TASK_SETTINGS = ("strength", "guidance_scale", "steps", "scheduler", "clahe")
QC_METRICS = ("lpips", "blur_ratio", "ssim", "specular_coverage")

COMMON_PARAMS: dict[str, Any] = {
    "model": DEFAULT_MODEL,         # local folder (loaded with local_files_only) or Hugging Face id
    "revision": None,               # hub revision; part of the cache key for hub ids
    "prompts": None,                # YAML prompt file; None = the shipped benchmark/prompts/cosmetic.yaml
    "policy": "proportional",       # proportional | balance | per_image (skinbench.oversampling)
    "amount": 0.8,                  # +80% per bucket (proportional) or images per real image (per_image)
    "min_support": 5,               # balance: classes with fewer real samples are not topped up
    "guidance_scale": [3.5, 5.5],   # ranges: each generation call draws a value (jitter)
    "steps": [24, 36],
    "scheduler": "euler_ancestral",
    "clahe": False,                 # equalize the source (skimage equalize_adapthist) before generating
    "per_task": {"oiliness": {"scheduler": "dpm_multistep", "clahe": True}},  # overrides by task name
    "resolution": 512,
    "batch_size": 1,                # >1 batches images; jitter is then drawn per batch (one call, one setting)
    "device": "auto",
    "dtype": "auto",                # auto = float16 on CUDA, float32 elsewhere
    "attention_slicing": "auto",    # auto = on for Apple MPS, where memory is shared
    "lpips_net": "alex",            # alex | vgg | squeeze | None (skip LPIPS)
    "max_lpips": None,              # optional QC filters; an unset threshold keeps everything
    "min_blur_ratio": None,
    "max_blur_ratio": None,
    "min_ssim": None,
    "specular_ranges": {},          # {task: {class: [lo, hi]}} acceptable specular coverage
    "progress": True,
}


def label_key(value: Any) -> str:
    """Label as prompt-file text: -1, -1.0 and "-1" are all "-1"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else str(value)


@dataclass(frozen=True)
class Prompt:
    positive: str
    negative: str


class PromptBook:
    """Per-task base prompt, class descriptors, additions and negatives (see cosmetic.yaml)."""

    def __init__(self, data: dict, origin: str):
        self.origin = origin
        self.digest = config_hash(data)
        try:
            self.negative_base = str(data.get("negative_base", ""))
            self.generic = dict(data["generic"])
            self.tasks = {str(k): dict(v) for k, v in (data.get("tasks") or {}).items()}
            for entry in self.tasks.values():
                for part in ("classes", "merged"):
                    entry[part] = {label_key(k): str(v) for k, v in (entry.get(part) or {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"prompt file {origin}: needs 'generic' and a 'tasks' mapping ({exc})") from None

    @classmethod
    def load(cls, path: str | Path | None) -> "PromptBook":
        if path is None:
            text = resources.files("skinbench").joinpath("prompts/cosmetic.yaml").read_text(encoding="utf-8")
            return cls(yaml.safe_load(text), "skinbench/prompts/cosmetic.yaml")
        return cls(read_yaml_mapping(path, "a prompt file: a mapping with 'generic' and 'tasks'"), str(path))

    def prompt(self, task: str, label: Any, classes: list | None = None) -> Prompt:
        """Known task: its class descriptor (the ``merged`` one when the dataset declares fewer
        ``classes`` than the file lists), else its fallback. Unknown task: the generic template."""
        key = label_key(label)
        entry = self.tasks.get(task)
        if entry is None:
            entry = self.generic
            descriptor = str(entry.get("descriptor", "{task}: {label}")).format(task=task.replace("_", " "), label=key)
        else:
            merged = classes is not None and len(set(map(label_key, classes))) < len(entry["classes"])
            descriptor = ((merged and entry["merged"].get(key)) or entry["classes"].get(key) or entry.get("fallback")
                          or f"{task.replace('_', ' ')}: {key}")
        positive = ", ".join(p for p in (entry.get("base"), descriptor, entry.get("additions")) if p)
        negative = ", ".join(p for p in (self.negative_base, entry.get("negative")) if p)
        return Prompt(positive.strip(), negative.strip())


@dataclass
class Job:
    """One synthetic image to produce (or find in the cache)."""

    row: int                     # position of the source row in the training frame
    source: str
    source_digest: str
    label: Any
    index: int                   # how many earlier synthetic images came from this source in this run
    image_seed: int
    prompt: Prompt
    batch: int = 0               # jobs of one planned batch share one pipeline call and its settings
    settings: dict = field(default_factory=dict)
    key: str = ""
    used: Prompt | None = None   # the prompts after trimming to the tokenizer's limit


def image_seed(run_seed: int, source_digest: str, index: int) -> int:
    """Seed of one generated image: reproducible per run, distinct per source and repeat."""
    raw = hashlib.sha256(f"{run_seed}:{source_digest}:{index}".encode()).digest()
    return int.from_bytes(raw[:8], "big") & (2**63 - 1)


def model_identity(model: str, revision: str | None) -> dict:
    """What identifies the weights: a content fingerprint of a local folder, or the hub id and revision."""
    path = Path(model).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        return {"fingerprint": _folder_fingerprint(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files),
                                                   str(path))}
    return {"hub_id": model, "revision": revision or "main"}


@lru_cache(maxsize=64)
def _folder_fingerprint(files: tuple, root: str) -> str:
    """Hash of each file's relative path, size, first and last MiB: cheap on multi-GB weights,
    yet different for any re-trained or re-initialised checkpoint."""
    h = hashlib.sha256()
    for name, size, _mtime in files:
        h.update(f"{Path(name).relative_to(root)}:{size}".encode())
        with open(name, "rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read())
    return h.hexdigest()[:24]


@lru_cache(maxsize=1)
def load_pipeline(class_name: str, model: str, revision: str | None, device: str, dtype: str, slicing: bool):
    """The diffusers pipeline, kept for the next task or cell (one at a time: they are large)."""
    import diffusers
    import torch

    from diffusers.pipelines import pipeline_utils

    local = Path(model).expanduser().is_dir()
    # newer diffusers renamed torch_dtype to dtype (and warn on the old name)
    dtype_arg = "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"
    pipe = getattr(diffusers, class_name).from_pretrained(
        str(Path(model).expanduser()) if local else model, local_files_only=local, revision=revision,
        safety_checker=None, requires_safety_checker=False, **{dtype_arg: getattr(torch, dtype)},
    )
    pipe = pipe.to(device)
    if slicing:
        pipe.enable_attention_slicing()
    pipe.set_progress_bar_config(disable=True)  # the augmenter shows one bar over images
    return pipe


@lru_cache(maxsize=4)
def lpips_scorer(net: str) -> LpipsScorer:
    return LpipsScorer(net)


def truncate(tokenizer, text: str) -> str:
    """Trim a prompt to what the text encoder sees (75 tokens for SD v1.5, plus start/end)."""
    limit = tokenizer.model_max_length - 2
    ids = tokenizer(text, add_special_tokens=False, truncation=True, max_length=limit + 1).input_ids
    return text if len(ids) <= limit else tokenizer.decode(ids[:limit]).strip()


def clahe(image: Image.Image) -> Image.Image:
    """Contrast-limited adaptive histogram equalization (the thesis's oiliness preprocessing)."""
    from skimage.exposure import equalize_adapthist

    out = equalize_adapthist(np.asarray(image, dtype=np.float64) / 255.0)
    return Image.fromarray(np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8))


class StableDiffusionAugmenter(Augmenter):
    """Base of the Stable Diffusion augmenters; subclasses choose the pipeline and its inputs."""

    mode: ClassVar[str] = ""
    pipeline_class: ClassVar[str] = ""
    meta = {
        "license": "Apache-2.0 (code); model weights under their own licence (SD v1.5: CreativeML OpenRAIL-M)",
        "citation": "Rombach et al. 2022, High-Resolution Image Synthesis with Latent Diffusion Models",
    }

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self._check_config()
        self.prompts = PromptBook.load(self.config["prompts"])
        self._pipeline = None
        self.stats = Counter()  # generated / cached / pipeline_calls, for the last augment() calls

    # ---- configuration -------------------------------------------------------------------
    def _check_config(self) -> None:
        cfg = self.config
        for task, overrides in (cfg["per_task"] or {}).items():
            unknown = sorted(set(overrides) - set(TASK_SETTINGS))
            if unknown:
                raise ConfigError(f"augmenter '{self.name}': per_task.{task} has unknown key(s) {unknown}; "
                                  f"known: {', '.join(TASK_SETTINGS)}")
        for task in ["", *(cfg["per_task"] or {})]:
            settings = self.task_settings(task)
            where = f"per_task.{task}" if task else "parameters"
            if settings["scheduler"] not in SCHEDULERS:
                raise ConfigError(f"augmenter '{self.name}' {where}: scheduler '{settings['scheduler']}' is unknown; "
                                  f"known: {', '.join(SCHEDULERS)}")
            for name in ("strength", "guidance_scale", "steps"):
                if name in settings:
                    value_range(settings[name], f"augmenter '{self.name}' {where}: {name}")
            if "strength" in settings and value_range(settings["strength"], "")[0] * value_range(settings["steps"], "")[0] < 1:
                raise ConfigError(f"augmenter '{self.name}' {where}: steps x strength must be at least 1 "
                                  "(diffusers runs int(steps * strength) denoising steps)")
        if cfg["resolution"] % 8:
            raise ConfigError(f"augmenter '{self.name}': resolution {cfg['resolution']} must be a multiple of 8")
        synthetic_counts([], cfg["policy"], cfg["amount"], cfg["min_support"])  # rejects an unknown policy early

    def task_settings(self, task: str) -> dict:
        """Generation settings for one task: the plugin's defaults, then its ``per_task`` overrides."""
        base = {k: self.config[k] for k in TASK_SETTINGS if k in self.config}
        return {**base, **(self.config["per_task"] or {}).get(task, {})}

    runtime_params = frozenset({"device", "progress", "attention_slicing"})

    def artefacts(self) -> dict[str, Any]:
        """The model (folder fingerprint, or hub id and revision), the prompt file's content and the
        dtype and device type in use: editing prompts or swapping weights makes new cells."""
        device = str(self._device())
        return {"model": model_identity(self.config["model"], self.config["revision"]),
                "prompts_digest": self.prompts.digest, "dtype": self.dtype_name(device),
                "device_type": device.split(":")[0]}

    def dtype_name(self, device: str) -> str:
        names = {"auto": "float16" if device.startswith("cuda") else "float32", "fp16": "float16",
                 "bf16": "bfloat16", "fp32": "float32"}
        name = names.get(self.config["dtype"], self.config["dtype"])
        if name not in ("float16", "bfloat16", "float32"):
            raise ConfigError(f"augmenter '{self.name}': dtype '{self.config['dtype']}' is unknown; use auto, fp32, fp16 or bf16")
        return name

    # ---- the contract ----------------------------------------------------------------------
    def augment(self, train: pd.DataFrame, task: Task, seed: int, workdir: Path) -> pd.DataFrame:
        jobs = self.plan(train, task.name, seed, task.classes)
        folder = Path(workdir) / self.name
        model_id = model_identity(self.config["model"], self.config["revision"])
        dtype = self.dtype_name(str(self._device()))
        for job in jobs:
            job.key = config_hash({"mode": self.mode, "model": model_id, "dtype": dtype, "source": job.source_digest,
                                   "positive": job.prompt.positive, "negative": job.prompt.negative,
                                   "resolution": self.config["resolution"], "seed": job.image_seed, **job.settings}, 32)
        missing = [job for job in jobs if not self._cached(folder, job)]
        self.stats.update(cached=len(jobs) - len(missing))
        self._generate(missing, task.name, folder)
        return self._rows(train, jobs, task.name, seed, folder)

    # ---- planning ----------------------------------------------------------------------------
    def plan(self, train: pd.DataFrame, task: str, seed: int, classes: list | None = None) -> list[Job]:
        """Which source makes each synthetic image, with its seed, prompt and drawn settings."""
        labels = list(train["label"])
        counts = synthetic_counts(labels, self.config["policy"], self.config["amount"], self.config["min_support"])
        rows = assign_sources(labels, counts, np.random.default_rng(seed))
        uses: Counter = Counter()
        jobs = []
        for row in rows:
            source = str(train["image"].iloc[row])
            digest = file_digest(source)
            jobs.append(Job(row, source, digest, labels[row], uses[digest], image_seed(seed, digest, uses[digest]),
                            self.prompts.prompt(task, labels[row], classes)))
            uses[digest] += 1
        settings = self.task_settings(task)
        size = max(1, int(self.config["batch_size"]))
        for start in range(0, len(jobs), size):
            drawn = self.draw_settings(settings, jobs[start].image_seed)
            for job in jobs[start:start + size]:
                job.batch, job.settings = start // size, drawn
        return jobs

    def draw_settings(self, settings: dict, seed: int) -> dict:
        """One value from each range (the per-image jitter; per batch when batching)."""
        rng = np.random.default_rng(seed)
        lo, hi = value_range(settings["steps"], "steps")
        drawn = {"guidance_scale": round(float(rng.uniform(*value_range(settings["guidance_scale"], "guidance_scale"))), 3),
                 "steps": int(rng.integers(int(lo), int(hi) + 1)), "scheduler": settings["scheduler"],
                 "clahe": bool(settings["clahe"])}
        if "strength" in settings:
            drawn["strength"] = round(float(rng.uniform(*value_range(settings["strength"], "strength"))), 3)
        return drawn

    # ---- cache -------------------------------------------------------------------------------
    @staticmethod
    def _paths(folder: Path, job: Job) -> tuple[Path, Path]:
        base = folder / job.key[:2] / job.key
        return base.with_suffix(".png"), base.with_suffix(".json")

    def _cached(self, folder: Path, job: Job) -> bool:
        png, meta = self._paths(folder, job)
        return png.exists() and meta.exists()

    # ---- generation --------------------------------------------------------------------------
    def _device(self):
        from skinbench.devices import resolve_device

        return resolve_device(self.config["device"])

    def pipeline(self):
        """Loaded on first use only, so a fully cached run never touches the model."""
        if self._pipeline is None:
            device = str(self._device())
            slicing = self.config["attention_slicing"]
            slicing = device.startswith("mps") if slicing == "auto" else bool(slicing)
            self._pipeline = load_pipeline(self.pipeline_class, self.config["model"], self.config["revision"],
                                           device, self.dtype_name(device), slicing)
        return self._pipeline

    def _generate(self, jobs: list[Job], task: str, folder: Path) -> None:
        if not jobs:
            return
        batches: dict[int, list[Job]] = {}
        for job in jobs:
            batches.setdefault(job.batch, []).append(job)
        bar = tqdm(total=len(jobs), desc=f"{self.name} {task}", unit="img", disable=not self.config["progress"], leave=False)
        for batch in batches.values():
            self._store(folder, batch, self.generate_batch(batch), task)
            bar.update(len(batch))
        bar.close()

    def generate_batch(self, batch: list[Job]) -> list[Image.Image]:
        """One pipeline call for jobs sharing settings; each image has its own generator."""
        import torch

        pipe = self.pipeline()
        settings = batch[0].settings
        self._set_scheduler(pipe, settings["scheduler"])
        sources = [self.source_image(job) for job in batch]
        generators = [torch.Generator("cpu").manual_seed(job.image_seed) for job in batch]
        for job in batch:
            job.used = Prompt(truncate(pipe.tokenizer, job.prompt.positive), truncate(pipe.tokenizer, job.prompt.negative))
        self.stats.update(pipeline_calls=1, generated=len(batch))
        return pipe(prompt=[job.used.positive for job in batch], negative_prompt=[job.used.negative for job in batch],
                    guidance_scale=settings["guidance_scale"], num_inference_steps=settings["steps"],
                    generator=generators, output_type="pil", **self.mode_inputs(batch, sources)).images

    def mode_inputs(self, batch: list[Job], sources: list[Image.Image]) -> dict:
        """Pipeline arguments particular to the mode (source image, mask, size)."""
        raise NotImplementedError

    def source_image(self, job: Job) -> Image.Image:
        """The source, centre-cropped and resized to the square working resolution (CLAHE if set)."""
        side = self.config["resolution"]
        image = ImageOps.fit(load_rgb(job.source), (side, side), Image.Resampling.BICUBIC)
        return clahe(image) if job.settings["clahe"] else image

    @staticmethod
    def _set_scheduler(pipe, name: str) -> None:
        import diffusers

        if type(pipe.scheduler).__name__ != SCHEDULERS[name]:
            pipe.scheduler = getattr(diffusers, SCHEDULERS[name]).from_config(pipe.scheduler.config)

    def _store(self, folder: Path, batch: list[Job], images: list[Image.Image], task: str) -> None:
        """Write each image and its metrics (computed once, so reruns need no model at all)."""
        side = self.config["resolution"]
        reals = [np.asarray(ImageOps.fit(load_rgb(job.source), (side, side), Image.Resampling.BICUBIC)) for job in batch]
        fakes = [np.asarray(im.convert("RGB").resize((side, side), Image.Resampling.BICUBIC)) for im in images]
        net = self.config["lpips_net"]
        distances = lpips_scorer(net).batch(fakes, reals) if net else [math.nan] * len(batch)
        for job, image, fake, real, distance in zip(batch, images, fakes, reals, distances):
            png, meta = self._paths(folder, job)
            metrics = {"lpips": distance, "blur_ratio": blur_ratio(fake, real), "ssim": ssim(fake, real),
                       "specular_coverage": specular_coverage(fake)}
            atomic_write(png, lambda fh, image=image: image.save(fh, format="PNG"))
            atomic_write_json(meta, {"task": task, "source": job.source, "settings": job.settings,
                                     "prompt_used": job.used.positive, "negative_prompt_used": job.used.negative,
                                     **metrics}, indent=None)

    # ---- quality control and provenance --------------------------------------------------------
    def qc_failures(self, metrics: dict, task: str, label: Any) -> list[str]:
        """Names of the thresholds an image misses; a NaN metric (not computable) misses none."""
        cfg = self.config
        checks = [("max_lpips", metrics["lpips"], lambda v, t: v <= t),
                  ("min_blur_ratio", metrics["blur_ratio"], lambda v, t: v >= t),
                  ("max_blur_ratio", metrics["blur_ratio"], lambda v, t: v <= t),
                  ("min_ssim", metrics["ssim"], lambda v, t: v >= t)]
        failed = [name for name, value, ok in checks
                  if cfg[name] is not None and not _isnan(value) and not ok(value, cfg[name])]
        ranges = {label_key(k): v for k, v in (cfg["specular_ranges"] or {}).get(task, {}).items()}
        bounds = ranges.get(label_key(label))
        if bounds is not None and not bounds[0] <= metrics["specular_coverage"] <= bounds[1]:
            failed.append("specular_range")
        return failed

    def _rows(self, train: pd.DataFrame, jobs: list[Job], task: str, seed: int, folder: Path) -> pd.DataFrame:
        records = []
        for job in jobs:
            png, meta = self._paths(folder, job)
            stored = json.loads(meta.read_text())
            metrics = {k: _float(stored[k]) for k in QC_METRICS}
            failed = self.qc_failures(metrics, task, job.label)
            records.append({
                **train.iloc[job.row].to_dict(),
                "image": str(png), "source": job.source, "synthetic": True, "group": train["group"].iloc[job.row],
                "task": task, "mode": self.mode, "model": self.config["model"],
                "prompt": job.prompt.positive, "negative_prompt": job.prompt.negative,
                "prompt_used": stored["prompt_used"], "negative_prompt_used": stored["negative_prompt_used"],
                "scheduler": job.settings["scheduler"], "strength": job.settings.get("strength", math.nan),
                "guidance_scale": job.settings["guidance_scale"], "steps": job.settings["steps"],
                "clahe": job.settings["clahe"], "resolution": self.config["resolution"],
                "run_seed": seed, "image_seed": job.image_seed, "source_index": job.index, "cache_key": job.key,
                **metrics, "kept": not failed, "qc_failed": ",".join(failed),
            })
        if not records:
            return train.iloc[0:0].assign(source=pd.Series(dtype=str), synthetic=pd.Series(dtype=bool))
        return pd.DataFrame.from_records(records)


def value_range(value: Any, what: str) -> tuple[float, float]:
    """A ``[lo, hi]`` parameter (a single number means a fixed value)."""
    if isinstance(value, (int, float)):
        return float(value), float(value)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number or a [low, high] pair, got {value!r}") from None
    if lo > hi:
        raise ConfigError(f"{what} range {value!r} has low > high")
    return lo, hi


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _isnan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)
