"""The pipeline config: data spec + model + loss + optim + train + eval, frozen and typed.

A pipeline YAML (see ``pipelines/``) names its data spec by path (relative to the
pipeline file) or inline; ``--set key=value`` overrides apply before validation,
so a typo there is caught like a typo in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from stgan.config import build, load_yaml, to_dict
from stgan.data.spec import DataSpec, load_spec, spec_from_dict
from stgan.errors import SpecError
from stgan.models.config import DiscriminatorConfig, GeneratorConfig
from stgan.training.health import HealthConfig


@dataclass(frozen=True)
class ModelConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


@dataclass(frozen=True)
class LossConfig:
    """Adversarial loss, penalties and instance noise."""

    name: Literal["bce", "lsgan", "hinge", "wgan"] = "hinge"
    label_smoothing: float = 0.0  # one-sided, bce only: real target 1 - smoothing
    r1_gamma: float = 0.0  # R1 penalty on real data (0: off)
    gp_weight: float = 0.0  # WGAN-GP gradient penalty (0: off)
    penalty_interval: int = 1  # lazy regularization: every k D steps, scaled by k
    instance_noise: float = 0.0  # initial std of noise added to D inputs
    instance_noise_steps: int = 1000  # annealed linearly to 0 over these steps

    def validate(self, where: str) -> None:
        if self.label_smoothing and self.name != "bce":
            raise SpecError(
                f"{where}.label_smoothing: only applies to loss 'bce', not '{self.name}'"
            )
        if not 0 <= self.label_smoothing < 1:
            raise SpecError(f"{where}.label_smoothing: {self.label_smoothing} must be in [0, 1)")
        for key in ("r1_gamma", "gp_weight", "instance_noise"):
            if getattr(self, key) < 0:
                raise SpecError(f"{where}.{key}: {getattr(self, key)} must be >= 0")
        if self.penalty_interval < 1 or self.instance_noise_steps < 1:
            raise SpecError(f"{where}: penalty_interval and instance_noise_steps must be >= 1")


@dataclass(frozen=True)
class OptimConfig:
    """Adam for G and D with separate rates and betas (TTUR), schedules, clipping, EMA."""

    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas_g: tuple[float, float] = (0.0, 0.9)
    betas_d: tuple[float, float] = (0.0, 0.9)
    n_critic: int = 1  # D steps per G step
    warmup_steps: int = 0  # linear LR warm-up
    schedule: Literal["constant", "step", "cosine", "cyclic"] = "constant"
    step_size: int = 1000  # step: multiply by gamma every step_size steps
    gamma: float = 0.5
    min_lr_factor: float = 0.0  # cosine and cyclic: lowest LR as a fraction of the base
    cycle_steps: int = 1000  # cyclic: period of the triangular cycle
    grad_clip: float = 0.0  # max gradient norm (0: no clipping)
    ema_decay: float = 0.999  # EMA of G's weights (0: EMA = G)
    grad_accum: int = 1  # micro-batches accumulated per optimizer step

    def validate(self, where: str) -> None:
        if self.lr_g <= 0 or self.lr_d <= 0:
            raise SpecError(f"{where}: lr_g and lr_d must be > 0")
        if min(self.n_critic, self.step_size, self.cycle_steps, self.grad_accum) < 1:
            raise SpecError(
                f"{where}: n_critic, step_size, cycle_steps and grad_accum must be >= 1"
            )
        if not 0 <= self.ema_decay < 1:
            raise SpecError(f"{where}.ema_decay: {self.ema_decay} must be in [0, 1)")
        if self.warmup_steps < 0 or self.grad_clip < 0:
            raise SpecError(f"{where}: warmup_steps and grad_clip must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000  # G steps
    batch_size: int = 8  # per process
    num_workers: int = 0
    seed: int = 0
    log_every: int = 10
    hist_every: int = 200  # weight and gradient histograms
    ckpt_every: int = 200
    keep_checkpoints: int = 3
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    compile: bool = False  # torch.compile G and D
    threads: int = 0  # intra-op threads per process (0: its share of the cores, see stgan.threads)

    def validate(self, where: str) -> None:
        for key in (
            "steps",
            "batch_size",
            "log_every",
            "hist_every",
            "ckpt_every",
            "keep_checkpoints",
        ):
            if getattr(self, key) < 1:
                raise SpecError(f"{where}.{key}: {getattr(self, key)} must be >= 1")
        if self.num_workers < 0:
            raise SpecError(f"{where}.num_workers: {self.num_workers} must be >= 0")
        if self.threads < 0:
            raise SpecError(f"{where}.threads: {self.threads} must be >= 0 (0: automatic)")


MIN_EVAL_SAMPLES = 6  # c2st: 5 folds; precision/recall: k = 5 neighbours

# Metrics the selection criterion may use (report_scalars names, per variable).
CRITERION_METRICS = (
    "acf_error",
    "lsd_db",
    "wasserstein1",
    "ks",
    "energy",
    "mmd2",
    "c2st",
)


@dataclass(frozen=True)
class EvalConfig:
    """Domain metrics during training: EMA samples against a real split, in physical units."""

    every: int = 0  # evaluate every N steps (0: off)
    samples: int = 64  # synthetic sequences drawn per evaluation (and real windows compared)
    split: str = "val"  # the real split compared against
    lags: int | None = None  # acf lags (default min(T - 1, 10))
    figures: bool = True  # log ACF/PSD/histogram/frames/Hovmoeller figures
    # best.pt minimizes the mean of these, each divided by its value at the first evaluation
    criterion: tuple[str, ...] = ("acf_error", "lsd_db", "wasserstein1")

    def validate(self, where: str) -> None:
        if self.every < 0 or self.samples < MIN_EVAL_SAMPLES:
            raise SpecError(
                f"{where}: every must be >= 0 and samples >= {MIN_EVAL_SAMPLES} "
                "(c2st's 5 folds and the k=5 neighbours need them)"
            )
        unknown = [m for m in self.criterion if m not in CRITERION_METRICS]
        if unknown or not self.criterion:
            raise SpecError(
                f"{where}.criterion: unknown metric(s) {unknown}; choose from {', '.join(CRITERION_METRICS)}"
            )


@dataclass(frozen=True)
class ReportConfig:
    """What ``stgan run`` generates and compares after training."""

    samples: int = 64  # synthetic sequences generated (and real test windows compared)
    split: str = "test"  # the real split they are compared with
    # simple generators scored beside the GAN (stgan/baselines.py)
    baselines: tuple[Literal["untrained", "ar1", "train_windows"], ...] = ("untrained", "ar1")
    seed: int = 0

    def validate(self, where: str) -> None:
        if self.samples < MIN_EVAL_SAMPLES:
            raise SpecError(f"{where}.samples: {self.samples} must be >= {MIN_EVAL_SAMPLES}")


@dataclass(frozen=True)
class PipelineConfig:
    data: Any  # a spec path, {spec: path, key: override, ...}, or a mapping; a DataSpec once loaded
    name: str = "run"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    health: HealthConfig = field(default_factory=HealthConfig)

    @property
    def spec(self) -> DataSpec:
        return self.data


# Keys that may change between a checkpoint and a resumed run.
RESUMABLE_KEYS = (
    "name",
    "train.steps",
    "train.num_workers",
    "train.log_every",
    "train.hist_every",
    "train.ckpt_every",
    "train.keep_checkpoints",
    "train.compile",
    "train.threads",
    "eval",
    "health",
    "data.files",
    "data.base_dir",
)


def load_pipeline(
    path: str | Path, overrides: tuple[str, ...] = (), profile: str | None = None
) -> PipelineConfig:
    """Read a pipeline YAML, apply a profile and ``key=value`` overrides, validate, load its spec.

    A pipeline may hold ``profiles: {NAME: {dotted.key: value, ...}}``, e.g. a ``gpu``
    profile with more steps and larger batches; ``profile`` applies one before ``overrides``.
    """
    path = Path(path)
    raw = load_yaml(path)
    profiles = raw.pop("profiles", None) or {}
    if profile is not None:
        if profile not in profiles:
            known = ", ".join(profiles) or "none"
            raise SpecError(f"{path}: no profile '{profile}' (profiles defined: {known})")
        for key, value in profiles[profile].items():
            raw = set_dotted(raw, str(key), value)
    raw = apply_overrides(raw, overrides)
    try:
        return pipeline_from_dict(raw, base_dir=path.resolve().parent)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


def pipeline_from_dict(raw: dict, base_dir: str | Path = ".") -> PipelineConfig:
    """Validate a pipeline mapping; ``data`` is a spec path (relative to base_dir) or a mapping."""
    config = build(PipelineConfig, raw, "")
    data = config.data
    if isinstance(data, str):
        spec = load_spec(Path(base_dir, data))
    elif isinstance(data, dict) and "spec" in data:  # a spec file plus overrides, e.g. patch
        path = Path(base_dir, str(data["spec"]))
        merged = {**load_yaml(path), **{k: v for k, v in data.items() if k != "spec"}}
        spec = spec_from_dict(merged, base_dir=path.resolve().parent)
    elif isinstance(data, dict):
        inner_base = data.get("base_dir", base_dir)
        spec = spec_from_dict(
            {k: v for k, v in data.items() if k != "base_dir"}, base_dir=inner_base
        )
    else:
        raise SpecError(f"data: expected a data spec path or mapping, found {data!r}")
    return replace(config, data=spec)


def apply_overrides(raw: dict, overrides: tuple[str, ...]) -> dict:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a nested mapping."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--set {item!r}: expected key=value, e.g. optim.lr_g=2e-4")
        raw = set_dotted(raw, key, _parse_value(text))
    return raw


def set_dotted(raw: dict, key: str, value: Any) -> dict:
    """A copy of ``raw`` with ``a.b.c`` set to ``value`` (intermediate mappings copied)."""
    raw = dict(raw)
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[parts[-1]] = value
    return raw


def _parse_value(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise SpecError(
            f"--set value {text!r} is not valid YAML; quote strings, e.g. key='[1'"
        ) from None
    if isinstance(value, str):  # YAML 1.1 reads 2e-4 as a string
        try:
            return float(value)
        except ValueError:
            return value
    return value


def resolved_dict(config: PipelineConfig) -> dict:
    """The fully resolved config as plain data (written beside each run)."""
    return to_dict(config)
