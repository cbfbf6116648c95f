"""The default recipe: a whole pipeline derived from a data spec alone.

``stgan run SPEC.yaml`` and ``stgan train SPEC.yaml`` take a data spec (``files:``,
``variables:``, no ``model:``) in place of a pipeline; :func:`default_pipeline` derives
the pipeline from what the data are: the grid size (after the spec's crop and coarsen),
the window length, the variables and the windows in each split. Each rule below is one
small function saying why. The recipe is the shipped demo's (``pipelines/demo.yaml``, at
a quarter of its cells per batch and twice its learning rates):
a ConvGRU generator, a dual discriminator with spectral norm, bce with label smoothing
0.1 and annealed instance noise, Adam 4e-4 for both with betas (0, 0.9), warm-up 50 and
EMA 0.99. Nothing is tuned per data set.

``--dry-run`` prints the derived pipeline (:func:`derived_yaml`) to save and edit; it
loads back to the same config. ``--set`` and ``--profile`` apply to the derived pipeline
as to a written one, and the schedule (evaluations, checkpoints, histograms, instance
noise) follows an overridden ``train.steps`` unless set too (:func:`apply_to_derived`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stgan.config import load_yaml
from stgan.metrics.registry import MIN_SAMPLES

MAX_CELLS = 32 * 32  # the working grid's cells at most: the demo's 32 x 32, whose step we timed
MAX_COARSEN = 4  # coarsen a big grid by at most this; patches take over beyond it
MIN_LOW_SIDE = 8  # the recurrence's grid, short side, at least (the demo's 8 x 8)
MAX_UP_STAGES = 3
MIN_D_SIDE = 4  # the discriminator's coarsest map, short side, at least
MAX_D_STAGES = 4
# batch x cells per frame: a quarter of the demo's 8 x 32 x 32. Halving the batch for twice
# the steps in the same CPU budget won on the quality suite twice (README, "Third round":
# 8192 -> 4096; "Fourth round": 4096 -> 2048): the runs are bound by their steps, not by
# the noise of D's gradients. A 32 x 32 grid stays at MIN_BATCH
CELLS_PER_BATCH = 2048
MIN_BATCH, MAX_BATCH = 4, 32
EVAL_SAMPLES = 64  # synthetic sequences per evaluation and in the report (the demo's)
CACHE_BYTES = 256 * 2**20  # hold the data in memory when they are no larger
GPU_SCALE_STEPS, GPU_SCALE_BATCH = 10, 4  # the gpu profile: 10x the steps, 4x the batch

# CPU budget: about 8 CPU-minutes on one thread for the whole run, of which 80% for the
# training steps (the rest: data preparation, two evaluations, generation and report).
CPU_BUDGET_S = 8 * 60
TRAIN_SHARE = 0.8
MIN_STEPS, MAX_STEPS = 200, 3000
# Cost of one training step (one D and one G update) on one CPU thread, in seconds:
# STEP_COST_CELL per cell of a batch's frames on the model's (padded) grid (decoder, D)
# + STEP_COST_STATE per cell of the recurrent state per cell layer (at 32 channels; it
# grows with the square of the width). Fitted (non-negative least squares on relative
# error) to the user CPU time of 20 steps (`stgan train SPEC --max-steps 22` less
# `--max-steps 2`, `--set train.threads=1 --set eval.every=0`, OMP_NUM_THREADS=1) of six
# suite sets as the recipe derives them: synthetic 0.42 s (32 x 32, up_stages 2, batch
# 8, 16 frames), ar1_smooth 0.48 (16 x 24, up 1, batch 16), ERA5 0.77 (16 x 24, up 1,
# batch 16, 24 frames), cycles 0.91 (12 x 20, up 0, batch 32), traffic 1.18 (16 x 12, up
# 0, batch 32, 24 frames), NYC 0.51 (14 x 8, up 0, batch 32, 24 frames); the fit is
# within 20 % of each. The first constants (a per-frame term, fitted to the demo alone at
# batch 8) put the batch-32 sets at 2-3x their cost, so they got the fewest steps.
STEP_COST_CELL = 3.4e-6
STEP_COST_STATE = 3.6e-6


@dataclass(frozen=True)
class DataFacts:
    """What the recipe derives a pipeline from, read from a spec and its files.

    ``height`` x ``width`` is the grid after the spec's crop and coarsen; ``windows``
    counts the windows of each split the spec defines.
    """

    name: str
    height: int
    width: int
    frames: int  # window length
    variables: tuple[str, ...]
    windows: dict[str, int]
    time_steps: int  # in all files together
    coarsen: int = 1  # the spec's own coarsen


def is_data_spec(raw: Any) -> bool:
    """Whether a YAML mapping is a data spec (``files:``, no ``model:`` or ``data:``)
    rather than a pipeline."""
    return isinstance(raw, dict) and "files" in raw and not {"model", "data"} & set(raw)


def data_facts(spec_path: str | Path) -> DataFacts:
    """Open the spec's files (no values are read) and count its grid and windows."""
    from stgan.data.io import open_source
    from stgan.data.spec import load_spec
    from stgan.data.windows import build_layout

    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    source = open_source(spec)
    layout = build_layout(source.time, spec.split, spec.window)
    raw_name = load_yaml(spec_path).get("name")
    return DataFacts(
        name=str(raw_name) if raw_name else spec_path.stem,
        height=source.grid[0],
        width=source.grid[1],
        frames=spec.window.length,
        variables=tuple(spec.variable_names),
        windows={name: int(starts.size) for name, starts in layout.windows.items()},
        time_steps=len(source.time),
        coarsen=spec.coarsen,
    )


def default_pipeline(spec_path: str | Path) -> dict:
    """The pipeline mapping derived from the data spec at ``spec_path``; its ``data.spec``
    is the spec's file name (relative to the spec's directory, where it is loaded from)."""
    return derive(data_facts(spec_path), Path(spec_path).name)


# The demo's recipe (pipelines/demo.yaml): the same for every data set. The learning rates
# are twice the demo's 2e-4: the runs are bound by their steps, and larger steps won on the
# quality suite (README, "Fifth round")
LOSS = {"name": "bce", "label_smoothing": 0.1, "instance_noise": 0.2}
OPTIM = {
    "lr_g": 4.0e-4,
    "lr_d": 4.0e-4,
    "betas_g": [0.0, 0.9],
    "betas_d": [0.0, 0.9],
    "n_critic": 1,
    "warmup_steps": 50,
    "ema_decay": 0.99,
}


def derive(facts: DataFacts, spec_ref: str) -> dict:
    """The pipeline mapping for data described by ``facts``, naming the spec ``spec_ref``."""
    coarsen, patch = shrink(facts.height, facts.width)
    height, width = working_grid(facts.height, facts.width, coarsen, patch)
    model = model_section(height, width, len(facts.variables), facts.frames)
    generator = model["generator"]
    batch = batch_size(height, width, facts.windows["train"])
    cost = step_seconds(
        batch,
        facts.frames,
        height,
        width,
        generator["up_stages"],
        generator["base_channels"],
        generator["num_layers"],
    )
    steps, evaluate = train_steps(cost), evaluation_samples(facts.windows)
    raw = {
        "name": facts.name,
        "data": data_section(facts, spec_ref, coarsen, patch),
        "model": model,
        "loss": dict(LOSS),
        "optim": dict(OPTIM),
        "train": {"steps": steps, "batch_size": batch, "seed": 0, "log_every": 10},
        "eval": {"every": 0, "samples": evaluate or EVAL_SAMPLES},
        "report": report_section(facts.windows),
    }
    for key, value in schedule(steps, bool(evaluate)).items():
        raw = _set(raw, key, value)
    gpu_steps = steps * GPU_SCALE_STEPS
    gpu = {
        "train.steps": gpu_steps,
        "train.batch_size": min(batch * GPU_SCALE_BATCH, facts.windows["train"]),
    }
    raw["profiles"] = {"gpu": {**gpu, **schedule(gpu_steps, bool(evaluate))}}
    return raw


def data_section(facts: DataFacts, spec_ref: str, coarsen: int, patch: int | None) -> dict:
    """The spec, with :func:`shrink`'s extra coarsen (on top of the spec's own) and patch,
    and the memory cache when the data fit (:func:`memory_cache`)."""
    data: dict[str, Any] = {"spec": spec_ref}
    if coarsen > 1:
        data["coarsen"] = facts.coarsen * coarsen
    if patch is not None:
        data["patch"] = patch
    if memory_cache(facts, *working_grid(facts.height, facts.width, coarsen, patch)):
        data["cache"] = "memory"
    return data


def model_section(height: int, width: int, channels: int, frames: int) -> dict:
    """The demo's ConvGRU G and dual D (spectral norm), sized to the working grid, the
    variables and the window by the rules below."""
    return {
        "generator": {
            "name": "convgru",
            "latent_dim": 32,
            "noise_channels": 4,
            "time_features": 2,
            "base_channels": generator_width(channels),
            "num_layers": recurrent_layers(frames),
            "up_stages": up_stages(height, width),
            "temporal_up_stages": 0,  # conv3d only; at most up_stages
        },
        "discriminator": {
            "name": "dual",
            "base_channels": 16,
            "num_stages": discriminator_stages(height, width),
            "num_frames": min(4, frames),  # the spatial D's frames: the demo's 4
            "spectral_norm": True,
        },
    }


def shrink(height: int, width: int) -> tuple[int, int | None]:
    """(extra coarsen factor, patch side or None) that bring a big grid to MAX_CELLS.

    A step's cost grows with the cells, so the budget would buy too few steps on a big
    grid. Coarsen first (block means: the large scales, which a short run learns first,
    stay), by the smallest factor up to MAX_COARSEN that fits; if the grid is still too
    big, train on square patches of side sqrt(MAX_CELLS) (generation then makes patches).
    """
    k = 1
    while (height // k) * (width // k) > MAX_CELLS and k < MAX_COARSEN:
        k += 1
    h, w = height // k, width // k
    patch = min(h, w, math.isqrt(MAX_CELLS)) if h * w > MAX_CELLS else None
    return k, patch


def working_grid(height: int, width: int, coarsen: int, patch: int | None) -> tuple[int, int]:
    """The grid the models see after :func:`shrink`'s coarsen and patch."""
    return (patch, patch) if patch is not None else (height // coarsen, width // coarsen)


def up_stages(height: int, width: int) -> int:
    """Generator up-sampling stages: as many as keep the recurrence's grid >= MIN_LOW_SIDE
    on its short side (up to MAX_UP_STAGES).

    Each stage makes the recurrence 4x cheaper, but from a 4 x 4 state the demo's three
    nearest-neighbour up-samplings left a block pattern a classifier always spotted; a
    small grid (short side < 16) runs its recurrence on the grid itself.
    """
    return _halvings(min(height, width), MIN_LOW_SIDE, most=MAX_UP_STAGES)


def generator_width(channels: int) -> int:
    """Generator base channels: the demo's 32 for one or two variables, 16 more for each
    further two (up to 64), so each variable keeps about as many state channels."""
    return min(64, 16 * max(2, math.ceil((channels + 2) / 2)))


def recurrent_layers(frames: int) -> int:
    """ConvGRU cells: one (the demo's) for windows up to 24 steps; two for longer ones,
    whose slower second state carries a memory across the longer window."""
    return 1 if frames <= 24 else 2


def discriminator_stages(height: int, width: int) -> int:
    """Discriminator stride-2 stages: as many as keep its coarsest map >= MIN_D_SIDE on
    the short side (1 to MAX_D_STAGES), so the last convs see a neighbourhood of the
    field rather than mostly padding; the demo's 32 x 32 gets its 3."""
    return _halvings(min(height, width), MIN_D_SIDE, most=MAX_D_STAGES, least=1)


def _halvings(side: int, smallest: int, most: int, least: int = 0) -> int:
    """How many stride-2 stages (``least`` to ``most``) keep ``side`` >= ``smallest``,
    each halving rounded up (a padded grid)."""
    stages = least
    while stages < most and -(-side // 2 ** (stages + 1)) >= smallest:
        stages += 1
    return stages


def batch_size(height: int, width: int, train_windows: int) -> int:
    """About CELLS_PER_BATCH cells per frame of a batch (4 at 32 x 32), a power of two in
    [MIN_BATCH, MAX_BATCH]: small grids get larger batches (the step costs little, and D's
    gradients are less noisy); never more than the train windows."""
    fit = 2 ** int(math.log2(max(CELLS_PER_BATCH // (height * width), 1)))
    return max(1, min(max(MIN_BATCH, min(MAX_BATCH, fit)), train_windows))


def step_seconds(
    batch: int, frames: int, height: int, width: int, up: int, base: int = 32, depth: int = 1
) -> float:
    """Estimated CPU seconds of one training step on one thread (the constants above) for
    a ``base``-channel generator with ``depth`` recurrent layers and ``up`` stages."""
    low = -(-height // 2**up) * -(-width // 2**up)  # the recurrence's grid
    padded = low * 4**up
    state = STEP_COST_STATE * batch * frames * low * depth * (base / 32) ** 2
    return STEP_COST_CELL * batch * frames * padded + state


def train_steps(seconds_per_step: float) -> int:
    """The steps that fill TRAIN_SHARE of CPU_BUDGET_S, in fifties, within
    [MIN_STEPS, MAX_STEPS]: fewer than 200 steps do not get past the warm-up and
    instance noise; past 3000 a small data set is memorized by D."""
    steps = round(CPU_BUDGET_S * TRAIN_SHARE / seconds_per_step / 50) * 50
    return int(min(MAX_STEPS, max(MIN_STEPS, steps)))


def evaluation_samples(windows: dict[str, int]) -> int:
    """Sequences per in-training evaluation: EVAL_SAMPLES, no more than the val windows
    (a comparison needs as many real windows); 0 (evaluation off, the last checkpoint is
    reported) when val has fewer than MIN_SAMPLES windows."""
    val = windows.get("val", 0)
    return min(EVAL_SAMPLES, val) if val >= MIN_SAMPLES else 0


def report_section(windows: dict[str, int]) -> dict:
    """The report compares with the test split, else val, else train (the first with
    MIN_SAMPLES windows), with EVAL_SAMPLES sequences (fewer if the split has fewer
    windows), beside the untrained and AR(1) baselines."""
    split = next(
        (name for name in ("test", "val", "train") if windows.get(name, 0) >= MIN_SAMPLES),
        "test" if "test" in windows else max(windows, key=windows.get),
    )
    samples = max(MIN_SAMPLES, min(EVAL_SAMPLES, windows.get(split, 0)))
    return {"samples": samples, "split": split, "baselines": ["untrained", "ar1"]}


def schedule(steps: int, evaluate: bool) -> dict[str, int]:
    """The settings that follow ``train.steps``: two evaluations (about 5% of the run
    in the demo), five checkpoints and histogram sets, and instance noise annealed
    over the whole run (the demo's)."""
    every = max(steps // 5, 1)
    return {
        "eval.every": max(steps // 2, 1) if evaluate else 0,
        "train.ckpt_every": every,
        "train.hist_every": every,
        "loss.instance_noise_steps": steps,
    }


def memory_cache(facts: DataFacts, height: int, width: int) -> bool:
    """Hold the (cropped, coarsened) data in memory when they fit in CACHE_BYTES: the
    windows overlap, so reading each from disk again costs more than the step."""
    return facts.time_steps * len(facts.variables) * height * width * 4 <= CACHE_BYTES


def apply_to_derived(derived: dict, tuned: dict, evaluate: bool) -> dict:
    """``tuned`` (``derived`` after ``--profile``/``--set``) with the :func:`schedule` keys
    that were left as derived recomputed for its ``train.steps``."""
    steps = tuned["train"]["steps"]
    before, after = schedule(derived["train"]["steps"], evaluate), schedule(steps, evaluate)
    for key, value in after.items():
        if _get(tuned, key) == before[key]:
            tuned = _set(tuned, key, value)
    return tuned


def header(spec_path: str | Path) -> str:
    """The comment the printed pipeline starts with."""
    return (
        f"# Derived by stgan's default recipe (stgan/recipe.py) from the data spec {spec_path}.\n"
        "# Save it (stgan run SPEC.yaml --dry-run > my_pipeline.yaml), edit it and run it\n"
        "# (stgan run my_pipeline.yaml); it loads back to the config `stgan run SPEC.yaml` uses.\n"
    )


def derived_yaml(raw: dict, spec_path: str | Path) -> str:
    """A derived pipeline mapping as YAML, its spec named by absolute path so the file
    loads back wherever it is saved."""
    raw = {**raw, "data": {**raw["data"], "spec": str(Path(spec_path).resolve())}}
    return header(spec_path) + yaml.safe_dump(raw, sort_keys=False)


def _get(raw: dict, key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _set(raw: dict, key: str, value: Any) -> dict:
    from stgan.training.config import set_dotted

    return set_dotted(raw, key, value)


def dry_run_yaml(
    path: str | Path, config: Any, overrides: tuple[str, ...] = (), profile: str | None = None
) -> str:
    """What ``--dry-run`` prints: for a data spec, the derived pipeline (with the header
    comment; save it and edit it); for a pipeline, its resolved config."""
    from stgan.training.config import pipeline_mapping, resolved_dict

    if not is_data_spec(load_yaml(path)):
        return yaml.safe_dump(resolved_dict(config), sort_keys=False)
    return derived_yaml(pipeline_mapping(path, overrides, profile, keep_profiles=True), path)
