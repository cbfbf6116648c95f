"""The pipeline config: data spec + model + loss + optim + train + eval, frozen and typed.

A pipeline YAML (see ``pipelines/``) names its data spec by path (relative to the
pipeline file) or inline; a data spec given in place of a pipeline gets one derived
from it (:mod:`stgan.recipe`). ``--set key=value`` overrides apply before validation,
so a typo there is caught like a typo in the file.

Each section checks its own keys as it is built; :func:`resolve` then checks, once,
every rule that spans sections (context frames against the window, evaluation steps
against the run, split names against the data spec, ...). Values derived from more
than one section (:attr:`PipelineConfig.output_frames`, ``split_names``, ``eval_steps``,
...) are properties of the config, so every stage reads the same answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml

from stgan.augment import Augmentation
from stgan.config import build, load_yaml, to_dict
from stgan.data.spec import DataSpec, load_spec, spec_from_dict
from stgan.errors import SpecError
from stgan.metrics.registry import DEFAULT_CRITERION, MIN_SAMPLES, check_criterion
from stgan.models.config import DiscriminatorConfig, GeneratorConfig
from stgan.recipe import apply_to_derived, default_pipeline, is_data_spec
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
    # DiffAugment on every D input, real and fake, both phases (stgan.augment; (): off)
    augment: tuple[Augmentation, ...] = ()
    # DGMR's step recipe, conditional pipelines only: G samples per G step (D scores each)
    # and the weight of the grid-cell regulariser on their mean (20 in DGMR; 0: off)
    generation_samples: int = 1
    grid_cell_weight: float = 0.0

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
        if self.generation_samples < 1:
            raise SpecError(
                f"{where}.generation_samples: {self.generation_samples} must be >= 1 "
                "(1: one sample per G step; DGMR uses 6)"
            )
        if not (math.isfinite(self.grid_cell_weight) and self.grid_cell_weight >= 0):
            raise SpecError(
                f"{where}.grid_cell_weight: {self.grid_cell_weight} must be a finite number "
                ">= 0 (0: off; DGMR uses 20)"
            )


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
    # the G step scores the last D step's fakes (made once, with grad) against that step's
    # batch, as PyTorch's DCGAN example does: one G forward and one batch a step fewer
    reuse_fakes: bool = False

    def validate(self, where: str) -> None:
        for key in ("lr_g", "lr_d"):
            rate = getattr(self, key)
            if not (math.isfinite(rate) and rate > 0):
                raise SpecError(f"{where}.{key}: {rate} must be a finite number > 0, e.g. 2e-4")
        for key in ("betas_g", "betas_d"):
            if not all(0 <= beta < 1 for beta in getattr(self, key)):
                raise SpecError(
                    f"{where}.{key}: {list(getattr(self, key))} must be two numbers in [0, 1), "
                    "e.g. [0.0, 0.9]"
                )
        if not (math.isfinite(self.grad_clip) and math.isfinite(self.gamma) and self.gamma > 0):
            raise SpecError(f"{where}: gamma must be a finite number > 0 and grad_clip finite")
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


# By default an interval between two full evaluations is cut into this many by quick ones
# (QUICK_PER_FULL - 1 of them), so each metric's curve has points between the full ones.
QUICK_PER_FULL = 5


@dataclass(frozen=True)
class EvalConfig:
    """Domain metrics during training: EMA samples against a real split, in physical units."""

    every: int = 0  # evaluate every N steps (0: off)
    samples: int = 64  # synthetic sequences drawn per evaluation (and real windows compared)
    split: str = "val"  # the real split compared against
    lags: int | None = None  # acf lags (default min(T - 1, 10))
    figures: bool = True  # log ACF/PSD/histogram/frames/Hovmoeller figures
    # best.pt minimizes the selection score of these (stgan.metrics.registry)
    criterion: tuple[str, ...] = DEFAULT_CRITERION
    # cheap evaluations (streaming metrics only, logged as run "quick") every N steps
    # between the full ones; None: derived (PipelineConfig.quick_eval_every), 0: off
    quick_every: int | None = None
    quick_samples: int = 16  # sequences drawn per quick evaluation (and real windows)

    def validate(self, where: str) -> None:
        if self.every < 0 or self.samples < MIN_SAMPLES:
            raise SpecError(
                f"{where}: every must be >= 0 and samples >= {MIN_SAMPLES} "
                "(c2st's 5 folds and the k=5 neighbours need them)"
            )
        if self.quick_every is not None and self.quick_every < 0:
            raise SpecError(
                f"{where}.quick_every: {self.quick_every} must be >= 0 (0: no quick "
                "evaluations; leave it out for the default)"
            )
        if self.quick_samples < MIN_SAMPLES:
            raise SpecError(f"{where}.quick_samples: {self.quick_samples} must be >= {MIN_SAMPLES}")
        check_criterion(self.criterion, f"{where}.criterion")


@dataclass(frozen=True)
class ReportConfig:
    """What ``stgan run`` generates and compares after training."""

    samples: int = 64  # synthetic sequences generated (and real test windows compared)
    split: str = "test"  # the real split they are compared with
    # simple generators scored beside the GAN (stgan/baselines.py)
    baselines: tuple[Literal["untrained", "ar1"], ...] = ("untrained", "ar1")
    seed: int = 0

    def validate(self, where: str) -> None:
        if self.samples < MIN_SAMPLES:
            raise SpecError(f"{where}.samples: {self.samples} must be >= {MIN_SAMPLES}")


@dataclass(frozen=True)
class PipelineConfig:
    """A whole pipeline, built by :func:`pipeline_from_dict` or :func:`load_pipeline`,
    which check the rules that span its sections (:func:`resolve`)."""

    data: DataSpec
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

    @property
    def channels(self) -> int:
        """Channels C of every ``(B, T, C, H, W)`` batch: one per data variable."""
        return len(self.data.variables)

    @property
    def context_frames(self) -> int:
        """Frames T_in at the start of each window that a conditional generator is given
        (0 for an unconditional one, whatever ``model.generator.context_frames`` says)."""
        generator = self.model.generator
        return generator.context_frames if generator.conditional else 0

    @property
    def output_frames(self) -> int:
        """Frames T the generator makes and D scores: the window minus the context."""
        return self.data.window.length - self.context_frames

    @property
    def split_names(self) -> tuple[str, ...]:
        """The splits the data spec defines, in time order (a subset of train, val, test)."""
        return self.data.split.names

    @property
    def eval_steps(self) -> range:
        """Steps at which training evaluates (``eval.every``, 2 x ``eval.every``, ... up to
        ``train.steps``); empty when evaluation is off. ``step in eval_steps`` tests one."""
        every = self.eval.every
        return range(every, self.train.steps + 1, every) if every else range(0)

    @property
    def quick_eval_every(self) -> int:
        """Steps between quick evaluations: ``eval.quick_every`` as written, or by default
        ``eval.every // QUICK_PER_FULL`` (never below ``train.log_every``), 0 (off) when
        that leaves no step between two full evaluations or evaluation is off."""
        written, every = self.eval.quick_every, self.eval.every
        if written is not None:
            return written if every else 0
        derived = max(every // QUICK_PER_FULL, self.train.log_every)
        return derived if every // QUICK_PER_FULL and derived < every else 0

    @cached_property  # the loop tests each step against it
    def quick_eval_steps(self) -> frozenset[int]:
        """Steps at which training evaluates cheaply: multiples of :attr:`quick_eval_every`
        up to ``train.steps``, except the full evaluations' steps."""
        every = self.quick_eval_every
        steps = range(every, self.train.steps + 1, every) if every else range(0)
        return frozenset(steps).difference(self.eval_steps)


MIN_OUTPUT_FRAMES = 2  # the ACF metrics need a lag


def resolve(config: PipelineConfig) -> PipelineConfig:
    """Check every rule that spans sections, once; return ``config`` unchanged.

    Raises ``SpecError`` with one line naming the keys and the fix. Rules that need the
    data themselves (a patch larger than the grid, a split too short for a window, too
    few evaluation windows) are checked when the data are opened.
    """
    for rule in CROSS_SECTION_RULES:
        rule(config)
    return config


def _check_output_frames(config: PipelineConfig) -> None:
    length, context = config.data.window.length, config.context_frames
    if context and config.output_frames < MIN_OUTPUT_FRAMES:
        raise SpecError(
            f"model.generator.context_frames: {context} leaves {max(config.output_frames, 0)} "
            f"of data.window.length {length} to generate and the ACF metrics need "
            f"{MIN_OUTPUT_FRAMES}; use context_frames <= {length - MIN_OUTPUT_FRAMES} "
            "or a longer window"
        )


def _check_temporal_factor(config: PipelineConfig) -> None:
    generator, frames = config.model.generator, config.output_frames
    factor = 2**generator.temporal_up_stages
    if generator.name == "conv3d" and frames % factor:
        raise SpecError(
            f"model.generator.temporal_up_stages: {generator.temporal_up_stages} needs "
            f"generated frames divisible by {factor}, but data.window.length "
            f"{config.data.window.length}{_minus_context(config)} gives {frames}; "
            f"change the window length or temporal_up_stages"
        )


def _check_dual_frames(config: PipelineConfig) -> None:
    discriminator, frames = config.model.discriminator, config.output_frames
    if discriminator.name == "dual" and discriminator.num_frames > frames:
        raise SpecError(
            f"model.discriminator.num_frames: {discriminator.num_frames} is more than the "
            f"{frames} generated frames (data.window.length {config.data.window.length}"
            f"{_minus_context(config)}); use num_frames <= {frames}"
        )


def _check_eval_schedule(config: PipelineConfig) -> None:
    every, steps = config.eval.every, config.train.steps
    if every > steps:
        raise SpecError(
            f"eval.every: {every} is more than train.steps {steps}, so no evaluation would "
            f"run; use eval.every <= {steps}, or 0 to turn evaluation off"
        )


def _check_quick_schedule(config: PipelineConfig) -> None:
    quick, every, steps = config.eval.quick_every, config.eval.every, config.train.steps
    if not quick:
        return
    if not every:
        raise SpecError(
            f"eval.quick_every: {quick} needs full evaluations, but eval.every is 0; set "
            "eval.every > 0, or eval.quick_every: 0"
        )
    if quick > steps:
        raise SpecError(
            f"eval.quick_every: {quick} is more than train.steps {steps}, so no quick "
            f"evaluation would run; use eval.quick_every <= {steps}, or 0 to turn them off"
        )


def _check_eval_lags(config: PipelineConfig) -> None:
    lags, frames = config.eval.lags, config.output_frames
    if config.eval.every and lags is not None and not 1 <= lags < frames:
        raise SpecError(
            f"eval.lags: {lags} does not fit the {frames} generated frames (data.window.length "
            f"{config.data.window.length}{_minus_context(config)}); use 1 <= eval.lags < {frames}"
        )


def _check_splits(config: PipelineConfig) -> None:
    named = [("report.split", config.report.split)]
    if config.eval.every:
        named.insert(0, ("eval.split", config.eval.split))
    for key, split in named:
        if split not in config.split_names:
            raise SpecError(
                f"{key}: '{split}' is not a split of the data spec, which defines "
                f"{', '.join(config.split_names)}; use one of them or add it to data.split"
            )


def _check_dgmr_recipe(config: PipelineConfig) -> None:
    loss = config.loss
    if config.model.generator.conditional:
        return
    for key, value, default in (
        ("grid_cell_weight", loss.grid_cell_weight, 0.0),
        ("generation_samples", loss.generation_samples, 1),
    ):
        if value != default:
            raise SpecError(
                f"loss.{key}: {value} is DGMR's step recipe, which needs a conditional "
                "generator (samples of one context against its real future); set "
                f"model.generator.conditional: true or loss.{key}: {default}"
            )


def _check_reuse_fakes(config: PipelineConfig) -> None:
    optim, loss = config.optim, config.loss
    if optim.reuse_fakes and (optim.grad_accum != 1 or loss.generation_samples != 1):
        raise SpecError(
            "optim.reuse_fakes: the G step reuses one D micro-batch's fakes, so it needs "
            f"optim.grad_accum 1 (not {optim.grad_accum}) and loss.generation_samples 1 "
            f"(not {loss.generation_samples}); set those or optim.reuse_fakes: false"
        )


def _minus_context(config: PipelineConfig) -> str:
    context = config.context_frames
    return f" minus model.generator.context_frames {context}" if context else ""


CROSS_SECTION_RULES = (
    _check_output_frames,
    _check_temporal_factor,
    _check_dual_frames,
    _check_eval_schedule,
    _check_quick_schedule,
    _check_eval_lags,
    _check_splits,
    _check_dgmr_recipe,
    _check_reuse_fakes,
)


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
    "report",  # read after training only
    "health",
    "data.files",
    "data.base_dir",
)


def load_pipeline(
    path: str | Path,
    overrides: tuple[str, ...] = (),
    profile: str | None = None,
    resolved: bool = True,
) -> PipelineConfig:
    """Read a pipeline YAML, apply a profile and ``key=value`` overrides, validate, load its spec.

    ``path`` may also be a data spec: the pipeline is then derived from it
    (:mod:`stgan.recipe`), and profiles and overrides apply to that.

    ``resolved=False`` skips the cross-section rules (:func:`resolve`): the values as
    written, for a caller that will change some before it resolves them.
    """
    path = Path(path)
    raw = pipeline_mapping(path, overrides, profile)
    try:
        return pipeline_from_dict(raw, base_dir=path.resolve().parent, resolved=resolved)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


def pipeline_mapping(
    path: str | Path,
    overrides: tuple[str, ...] = (),
    profile: str | None = None,
    keep_profiles: bool = False,
) -> dict:
    """The pipeline at ``path`` as a mapping (derived by :func:`stgan.recipe.default_pipeline`
    when ``path`` is a data spec), with a profile and ``key=value`` overrides applied.

    A pipeline may hold ``profiles: {NAME: {dotted.key: value, ...}}``, e.g. a ``gpu``
    profile with more steps and larger batches; ``profile`` applies one before ``overrides``.
    ``keep_profiles`` keeps the table in the mapping when no profile was applied.
    """
    path = Path(path)
    raw = load_yaml(path)
    derived = default_pipeline(path) if is_data_spec(raw) else None
    raw = dict(derived or raw)
    profiles = raw.pop("profiles", None) or {}
    if profile is not None:
        if profile not in profiles:
            known = ", ".join(profiles) or "none"
            raise SpecError(f"{path}: no profile '{profile}' (profiles defined: {known})")
        for key, value in profiles[profile].items():
            raw = set_dotted(raw, str(key), value)
    raw = apply_overrides(raw, overrides)
    if derived is not None:
        raw = apply_to_derived(derived, raw, evaluate=derived["eval"]["every"] > 0)
    if keep_profiles and profile is None and profiles:
        raw["profiles"] = profiles
    return raw


def pipeline_from_dict(
    raw: dict, base_dir: str | Path = ".", resolved: bool = True
) -> PipelineConfig:
    """Validate a pipeline mapping and :func:`resolve` it; ``data`` is a spec path
    (relative to base_dir), a spec path with overrides, or the spec as a mapping."""
    if not isinstance(raw, dict) or "data" not in raw:
        raise SpecError("data: required key is missing; name a data spec file or give one inline")
    spec = data_spec(raw["data"], base_dir)
    config = build(PipelineConfig, {**raw, "data": spec}, "")
    return resolve(config) if resolved else config


def data_spec(data: Any, base_dir: str | Path = ".") -> DataSpec:
    """The pipeline's ``data:`` value as a spec: a path (relative to ``base_dir``), a
    mapping ``{spec: path, key: override, ...}`` (e.g. a patch), or the spec inline (a
    resolved config's, with ``base_dir``)."""
    if isinstance(data, str):
        return load_spec(Path(base_dir, data))
    if isinstance(data, dict) and "spec" in data:
        path = Path(base_dir, str(data["spec"]))
        merged = {**load_yaml(path), **{k: v for k, v in data.items() if k != "spec"}}
        return spec_from_dict(merged, base_dir=path.resolve().parent)
    if isinstance(data, dict):
        inner_base = data.get("base_dir", base_dir)
        return spec_from_dict({k: v for k, v in data.items() if k != "base_dir"}, inner_base)
    raise SpecError(f"data: expected a data spec path or mapping, found {data!r}")


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
