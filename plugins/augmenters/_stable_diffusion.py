"""Stable Diffusion augmentation shared by ``sd-img2img``, ``sd-text2img`` and ``sd-inpaint``.

The recipe is thesis section 4.2: per (task, class) bucket oversampling, prompts from an
editable YAML file (:mod:`._sd_prompts`), per-task parameter ranges with jitter, per-task
scheduler and optional CLAHE, and quality metrics logged for every image (thresholds optional,
:mod:`skinbench.quality_control`). Images are cached (:mod:`._sd_cache`), so a rerun calls no pipeline.

Speed: generated images stay tensors on the pipeline's device (``output_type="pt"``) and go
to a background thread, which computes the four quality metrics there for the whole batch in
one call, copies the results to the host and encodes the PNGs and sidecars while the host
already runs the next batch; another thread reads the next batch's sources meanwhile. Noise
and per-image seeds: :mod:`._sd_pipeline`.
"""
from __future__ import annotations

import importlib.metadata
import json
import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field
from skinbench.sdk import (
    QUALITY_COLUMNS,
    assign_sources,
    augmentation_key,
    Augmenter,
    ConfigError,
    DeviceName,
    file_digest,
    load_rgb,
    LpipsScorer,
    PrecisionName,
    qc_failures,
    quality_metrics,
    QualityThresholds,
    resolve_device,
    rgb_tensor,
    synthetic_counts,
    Task,
    to_device,
    trunk_weights_file,
)
from tqdm.auto import tqdm

from ._params import OversamplingParams, bounds, value_or_range
from ._sd_cache import (
    BackgroundWriter,
    Job,
    entry_paths,
    image_seed,
    is_cached,
    model_identity,
    write_entry,
)
from ._sd_pipeline import SchedulerName, clahe, load_pipeline, set_scheduler
from ._sd_prompts import Prompt, PromptBook, label_key, truncate

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
TASK_SETTINGS = ("strength", "guidance_scale", "steps", "scheduler", "clahe")
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

Strength = value_or_range(Annotated[float, Field(gt=0, le=1)])
Guidance = value_or_range(Annotated[float, Field(ge=0)])
Steps = value_or_range(Annotated[int, Field(ge=1)])


class TaskSettings(BaseModel):
    """Generation settings one task overrides (``per_task: {oiliness: {scheduler: dpm_multistep}}``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    strength: Strength | None = None
    guidance_scale: Guidance | None = None
    steps: Steps | None = None
    scheduler: SchedulerName | None = None
    clahe: bool | None = None


class StableDiffusionParams(QualityThresholds, OversamplingParams):
    """Parameters of every SD augmenter; img2img and inpainting add ``strength``."""

    model: str = Field(DEFAULT_MODEL, description="local folder (loaded with local_files_only) or Hugging Face id")
    revision: str | None = Field(None, description="hub revision; resolved to a commit, part of the identity")
    prompts: str | None = Field(None, description="YAML prompt file; None = the shipped prompts/cosmetic.yaml")
    guidance_scale: Guidance = Field([3.5, 5.5], description="a range: each generation call draws a value (jitter)")
    steps: Steps = [24, 36]
    scheduler: SchedulerName = "euler_ancestral"
    clahe: bool = Field(False, description="equalize the source (skimage equalize_adapthist) before generating")
    per_task: dict[str, TaskSettings] = Field({"oiliness": TaskSettings(scheduler="dpm_multistep", clahe=True)},
                                              description="overrides by task name")
    resolution: Annotated[int, Field(ge=8, multiple_of=8)] = 512
    batch_size: Annotated[int, Field(ge=1)] = Field(1, description=">1 batches images; jitter is then drawn per "
                                                                     "batch (one call, one setting)")
    device: DeviceName = "auto"
    dtype: PrecisionName = Field("auto", description="auto = float16 on CUDA, float32 elsewhere")
    attention_slicing: Literal["auto"] | bool = Field("auto", description="auto = on for Apple MPS (shared memory)")
    lpips_net: Literal["alex", "vgg", "squeeze"] | None = Field("alex", description="None skips LPIPS")
    progress: bool = True


@lru_cache(maxsize=4)
def lpips_scorer(net: str, device: str) -> LpipsScorer:
    return LpipsScorer(net, device=device)


class StableDiffusionAugmenter(Augmenter):
    """Base of the Stable Diffusion augmenters; subclasses choose the pipeline and its inputs."""

    Params: ClassVar[type[StableDiffusionParams]] = StableDiffusionParams
    mode: ClassVar[str] = ""
    pipeline_class: ClassVar[str] = ""
    transient = ("_pipeline",)
    runtime_params = frozenset({"device", "dtype", "attention_slicing", "progress"})
    selection_params = frozenset({"policy", "amount", "min_support", "max_lpips", "min_blur_ratio", "max_blur_ratio",
                                  "min_ssim", "specular_ranges"})
    """``batch_size`` is not among them: jitter is drawn per batch, so it changes the images."""
    meta = {
        "license": "Apache-2.0 (code); model weights under their own licence (SD v1.5: CreativeML OpenRAIL-M)",
        "citation": "Rombach et al. 2022, High-Resolution Image Synthesis with Latent Diffusion Models",
    }

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self._check_steps_and_strength()
        self.prompts = PromptBook.load(self.config["prompts"])
        self._pipeline = None
        self._trimmed_prompts: dict[str, str] = {}
        self.stats = Counter()  # generated / cached / pipeline_calls, for the last augment() calls

    # ---- configuration -------------------------------------------------------------------
    def _check_steps_and_strength(self) -> None:
        for task in ["", *self.config["per_task"]]:
            settings = self.task_settings(task)
            if "strength" in settings and bounds(settings["strength"])[0] * bounds(settings["steps"])[0] < 1:
                where = f"per_task.{task}" if task else "parameters"
                raise ConfigError(f"augmenter '{self.name}' {where}: steps x strength must be at least 1 "
                                  "(diffusers runs int(steps * strength) denoising steps)")

    def task_settings(self, task: str) -> dict:
        """Generation settings for one task: the plugin's defaults, then its ``per_task`` overrides."""
        base = {k: self.config[k] for k in TASK_SETTINGS if k in self.config}
        overrides = self.config["per_task"].get(task) or {}
        return {**base, **{k: v for k, v in overrides.items() if v is not None}}

    def artefacts(self) -> dict[str, Any]:
        """The model (folder fingerprint, or hub id and commit), the prompt file's content, the dtype and
        device type in use, the libraries that generate, and whether LPIPS has its trunk weights."""
        import torch

        device = self._device()
        net = self.config["lpips_net"]
        return {"model": model_identity(self.config["model"], self.config["revision"], f"augmenter '{self.name}'"),
                "prompts_digest": self.prompts.digest, "dtype": self.dtype_name(device), "device_type": device.type,
                "diffusers": importlib.metadata.version("diffusers"), "torch": torch.__version__,
                "lpips_trunk": None if net is None else trunk_weights_file(net).exists()}

    def dtype_name(self, device: torch.device) -> str:
        dtype = self.config["dtype"]
        return DTYPES.get(dtype) or ("float16" if device.type == "cuda" else "float32")

    def _device(self) -> torch.device:
        return resolve_device(self.config["device"])

    # ---- the contract ----------------------------------------------------------------------
    def augment(self, train: pd.DataFrame, task: Task, seed: int, workdir: Path) -> pd.DataFrame:
        jobs = self.plan(train, task.name, seed, task.classes)
        folder = Path(workdir) / self.name
        for job in jobs:
            job.key = augmentation_key(self, source=job.source_digest, seed=job.image_seed,
                                       prompt=job.prompt.positive, negative=job.prompt.negative, **job.settings)
        missing = [job for job in jobs if not is_cached(folder, job.key)]
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
        size = self.config["batch_size"]
        for start in range(0, len(jobs), size):
            drawn = self.draw_settings(settings, jobs[start].image_seed)
            for job in jobs[start:start + size]:
                job.batch, job.settings = start // size, drawn
        return jobs

    def draw_settings(self, settings: dict, seed: int) -> dict:
        """One value from each range (the per-image jitter; per batch when batching)."""
        rng = np.random.default_rng(seed)
        lo, hi = bounds(settings["steps"])
        drawn = {"guidance_scale": round(float(rng.uniform(*bounds(settings["guidance_scale"]))), 3),
                 "steps": int(rng.integers(int(lo), int(hi) + 1)), "scheduler": settings["scheduler"],
                 "clahe": bool(settings["clahe"])}
        if "strength" in settings:
            drawn["strength"] = round(float(rng.uniform(*bounds(settings["strength"]))), 3)
        return drawn

    # ---- generation --------------------------------------------------------------------------
    def pipeline(self):
        """Loaded on first use only, so a fully cached run never touches the model."""
        if self._pipeline is None:
            device = self._device()
            slicing = self.config["attention_slicing"]
            slicing = device.type == "mps" if slicing == "auto" else bool(slicing)
            self._pipeline = load_pipeline(self.pipeline_class, self.config["model"],
                                           self.identity.artefacts["model"].get("revision"), str(device),
                                           self.dtype_name(device), slicing)
        return self._pipeline

    def _generate(self, jobs: list[Job], task: str, folder: Path) -> None:
        if not jobs:
            return
        by_batch: dict[int, list[Job]] = {}
        for job in jobs:
            by_batch.setdefault(job.batch, []).append(job)
        batches = list(by_batch.values())
        bar = tqdm(total=len(jobs), desc=f"{self.name} {task}", unit="img", disable=not self.config["progress"],
                   leave=False)
        # sources are read (and equalised) for the next batch while this one generates
        with BackgroundWriter() as writer, ThreadPoolExecutor(1, thread_name_prefix="skinbench-sd-read") as reader:
            upcoming = reader.submit(self._inputs, batches[0])
            for i, batch in enumerate(batches):
                references, sources = upcoming.result()
                if i + 1 < len(batches):
                    upcoming = reader.submit(self._inputs, batches[i + 1])
                self._store(writer, folder, batch, self.generate_batch(batch, sources), references, task)
                bar.update(len(batch))
        bar.close()

    def _inputs(self, batch: list[Job]) -> tuple[list[Image.Image], list[Image.Image]]:
        """(references, pipeline sources): each source fitted to the working resolution, then CLAHE if set."""
        references = [self.reference_image(job) for job in batch]
        return references, [clahe(r) if job.settings["clahe"] else r for job, r in zip(batch, references)]

    def generate_batch(self, batch: list[Job], sources: list[Image.Image]) -> torch.Tensor:
        """One pipeline call for jobs sharing settings: (B, 3, H, W) images in [0, 1] on the pipeline's device."""
        import torch

        pipe = self.pipeline()
        settings = batch[0].settings
        set_scheduler(pipe, settings["scheduler"])
        generators = [torch.Generator("cpu").manual_seed(job.image_seed) for job in batch]
        for job in batch:
            job.used = Prompt(self._trimmed(pipe.tokenizer, job.prompt.positive),
                              self._trimmed(pipe.tokenizer, job.prompt.negative))
        self.stats.update(pipeline_calls=1, generated=len(batch))
        return pipe(prompt=[job.used.positive for job in batch], negative_prompt=[job.used.negative for job in batch],
                    guidance_scale=settings["guidance_scale"], num_inference_steps=settings["steps"],
                    generator=generators, output_type="pt",
                    **self.mode_inputs(pipe, batch, sources, generators)).images

    def _trimmed(self, tokenizer, text: str) -> str:
        """:func:`truncate`, once per distinct prompt (a bucket's images share theirs)."""
        if text not in self._trimmed_prompts:
            self._trimmed_prompts[text] = truncate(tokenizer, text)
        return self._trimmed_prompts[text]

    def mode_inputs(self, pipe, batch: list[Job], sources: list[Image.Image],
                    generators: list[torch.Generator]) -> dict:
        """Pipeline arguments particular to the mode (source image or latents, mask, size)."""
        raise NotImplementedError

    def reference_image(self, job: Job) -> Image.Image:
        """The source, centre-cropped and resized to the square working resolution: what generated
        images are compared with, and (after CLAHE when set) the pipeline's input."""
        side = self.config["resolution"]
        return ImageOps.fit(load_rgb(job.source), (side, side), Image.Resampling.BICUBIC)

    def _store(self, writer: BackgroundWriter, folder: Path, batch: list[Job], images: torch.Tensor,
               references: list[Image.Image], task: str) -> None:
        """Hand the batch to a writer thread: the host goes on to the next batch at once."""
        writer.submit(self._check_and_write, folder, batch, images, references, task)

    def _check_and_write(self, folder: Path, batch: list[Job], images: torch.Tensor, references: list[Image.Image],
                         task: str) -> None:
        """The four quality metrics of the batch in one call on the images' device, then each image's PNG
        and sidecar (computed once, so reruns and threshold changes need no model)."""
        import torch

        with torch.inference_mode():
            pixels = (images.float() * 255).round_()  # the uint8 values diffusers' PIL output would hold
            reals = to_device(torch.stack([rgb_tensor(r) for r in references]), pixels.device)
            net = self.config["lpips_net"]
            metrics = quality_metrics(pixels, reals, lpips_scorer(net, str(pixels.device)) if net else None).cpu()
            host = pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
            for job, image, values in zip(batch, host, metrics.tolist()):
                write_entry(folder, job.key, image, {
                    "task": task, "source": job.source, "settings": job.settings, "prompt_used": job.used.positive,
                    "negative_prompt_used": job.used.negative, **dict(zip(QUALITY_COLUMNS, values))})

    # ---- quality control and provenance --------------------------------------------------------
    def specular_range(self, task: str, label: Any) -> list[float] | None:
        ranges = {label_key(k): v for k, v in (self.config["specular_ranges"] or {}).get(task, {}).items()}
        return ranges.get(label_key(label))

    def _rows(self, train: pd.DataFrame, jobs: list[Job], task: str, seed: int, folder: Path) -> pd.DataFrame:
        records = []
        for job in jobs:
            png, meta = entry_paths(folder, job.key)
            stored = json.loads(meta.read_text())
            metrics = {k: _float(stored[k]) for k in QUALITY_COLUMNS}
            failed = qc_failures(self.config, metrics, self.specular_range(task, job.label))
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


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
