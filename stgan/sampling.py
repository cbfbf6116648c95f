"""Sample synthetic sequences from a trained checkpoint, in physical units.

:func:`generate` (also ``stgan.generate``) reads top to bottom: load the checkpoint (a file or a run directory)
→ check its stgan version and config → rebuild the EMA generator → draw each sample's
latents from its own seed ``(seed, index)`` → run the generator in batches → invert the
transforms → restore the static mask as NaN → an ``xr.Dataset`` on the training grid.
:func:`stgan.data.cf.write_netcdf` writes it as CF NetCDF.

A checkpoint is self-contained when it holds ``"grid"`` (:func:`stgan.data.cf.describe_grid`)
and ``"transforms"`` (:meth:`Transforms.to_dict`). Older ones fall back to the run's
``transforms.json`` and to re-opening the training data named in their config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
import yaml
from tqdm import tqdm

from stgan import __version__
from stgan.data import calendar, cf
from stgan.data.io import open_file, open_source
from stgan.data.transforms import Transforms
from stgan.errors import CheckpointError, DataError, SpecError, StganError
from stgan.models import Generator, build_generator
from stgan.training import checkpoint as ckpt
from stgan.training.config import PipelineConfig, pipeline_from_dict
from stgan.training.distributed import resolve_device
from stgan.training.health import nonfinite_parameters

# A normalized sample value this far from 0 (the train mean, in train standard deviations
# or half-ranges) comes from a generator whose weights blew up: trained data lie within a few.
FAR_OUTSIDE = 100.0
_SPREAD = {
    "standardize": "standard deviations",
    "log1p": "standard deviations of log1p",
    "minmax": "half-ranges",
}
_EARLIER = (
    "generate from an earlier ckpt_*.pt or best.pt, or train again with lower "
    "optim.lr_g and optim.lr_d (or optim.grad_clip=1.0)"
)


@dataclass
class Trained:
    """What a checkpoint holds for sampling: config, grid, transforms and the EMA generator."""

    path: Path
    config: PipelineConfig
    config_dict: dict
    grid: dict
    transforms: Transforms
    generator: Generator  # EMA weights, eval mode

    @property
    def frames(self) -> int:
        """Frames the generator was trained to produce (without the context)."""
        return self.generator.frames

    @property
    def conditional(self) -> bool:
        return self.config.model.generator.conditional

    @property
    def context_frames(self) -> int:
        return self.config.context_frames

    @property
    def cycles(self) -> tuple[str, ...]:
        """The calendar cycles the generator is conditioned on (none: no calendar inputs)."""
        return calendar.model_cycles(self.grid, self.config.model.generator.calendar)


def generate(
    checkpoint: str | Path,
    num: int,
    length: int | None = None,
    seed: int = 0,
    context: str | Path | xr.Dataset | None = None,
    device: str = "auto",
    batch_size: int = 16,
    progress: bool = True,
    start: str | Sequence[str] | None = None,
) -> xr.Dataset:
    """Sample ``num`` sequences with the EMA generator of a checkpoint.

    Parameters
    ----------
    checkpoint : str or Path
        A checkpoint file, or a run directory (its ``checkpoints/best.pt`` if present,
        else the newest valid ``ckpt_*.pt``).
    num : int
        Number of sequences (>= 1).
    length : int, optional
        Time steps per sequence; defaults to the trained length. Recurrent generators
        (convgru, convlstm) can make longer ones; conv3d cannot.
    seed : int
        Sample ``i`` draws its latents from seed ``(seed, i)``: the same seed gives the
        same output, whatever ``batch_size`` and device (up to float rounding).
    context : str, Path or xr.Dataset, optional
        Conditional (nowcasting) generators only: the variables on the training grid;
        the last ``context_frames`` steps are the past. The output times continue after
        the context's last time.
    device : str
        ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
    batch_size : int
        Samples per generator call.
    progress : bool
        Show a progress bar on stderr.
    start : str or sequence of str, optional
        Unconditional generators only: the (ISO) time of the first step, on the training
        data's calendar; default the training data's first time. A generator conditioned
        on the calendar (``model.generator.calendar``) makes its samples for those times.
        ``num`` times give sample ``i`` its own start (as ``stgan run`` does for its
        report: the times of the compared windows), recorded as coordinate ``start_time``.

    Returns
    -------
    xr.Dataset
        Variables ``(sample, time, y, x)`` in physical units, NaN where the training
        data are always missing, with the training grid's coordinates and attributes.
        The time coordinate starts at ``start`` (nowcasts: after the context); the
        ``comment`` attribute says whether the samples are for those times.
    """
    check_count("num", num)
    check_count("batch_size", batch_size)
    if seed < 0:
        raise SpecError(f"--seed {seed}: must be >= 0")
    torch_device = resolve_device(device)
    trained = load_trained(checkpoint, torch_device)
    if nonfinite_parameters(trained.generator):
        raise CheckpointError(
            f"{trained.path}: its EMA generator holds NaN/Inf weights (training diverged); "
            f"{_EARLIER}"
        )
    frames = trained.frames if length is None else check_length(trained, length)
    starts = start_times(trained, start, num)
    past, last_time = read_context(trained, context)
    if last_time is not None:  # nowcasts: after the context
        starts = [cf.next_time(trained.grid, last_time)]
    times = [parse_start(trained.grid, s, frames) for s in starts]
    days = calendar_inputs(trained, times)  # (1 or N, T, F) or None
    values = sample(trained, num, frames, seed, past, batch_size, progress, days)
    check_samples(trained, values)  # values: (N, T, C, H, W)
    ds = build_dataset(trained, values, times[0], seed, last_time, given=start is not None)
    if len(times) > 1:
        ds = ds.assign_coords(start_time=start_time_coordinate(times))
        ds.attrs["comment"] = (
            "Unconditional samples, each for its own times: sample i for the times from "
            "start_time[i] at the data's step (the time coordinate is sample 0's)"
            + ("." if trained.cycles else "; the generator takes no calendar inputs.")
        )
    return ds


def start_times(trained: Trained, start: str | Sequence[str] | None, num: int) -> list[str]:
    """The start of every sample (one for all, or ``num``): ``start``, by default the
    training data's first time. Refused (``SpecError``) for a conditional generator,
    whose times follow its context, and for a count of starts other than 1 or ``num``."""
    if start is None:
        return [trained.grid["time"]["first"]]
    if trained.conditional:
        raise SpecError(
            f"--start: {trained.path.name} holds a conditional (nowcasting) generator, whose "
            "times follow its --context; drop --start"
        )
    starts = [start] if isinstance(start, str) else [str(s) for s in start]
    if len(starts) not in (1, num):
        raise SpecError(f"start: {len(starts)} start times for {num} samples; give 1 or {num}")
    return starts


def parse_start(grid: dict, start: str, frames: int) -> xr.DataArray:
    """The time coordinate of ``frames`` steps from ``start``, parsed on the grid's calendar;
    ``SpecError`` (one line) for a time that calendar does not have."""
    try:
        return cf.time_coordinate(grid, start, frames)
    except (ValueError, TypeError, OverflowError) as exc:
        calendar_name = grid["time"]["calendar"]
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(
            f"--start {start!r}: not a time on the data's {calendar_name} calendar ({reason}); "
            f"give an ISO time such as {grid['time']['first']}"
        ) from None


def calendar_inputs(trained: Trained, times: list[xr.DataArray]) -> np.ndarray | None:
    """``(len(times), T, F)`` calendar features of each sample's times, None when the
    generator takes none."""
    if not trained.cycles:
        return None
    return np.stack([calendar.features(t.to_index(), trained.cycles) for t in times])


def start_time_coordinate(times: list[xr.DataArray]) -> xr.DataArray:
    """``start_time`` (sample): each sample's first time, encoded as the time coordinate."""
    first = times[0]
    values = np.asarray([t.values[0] for t in times])
    coord = xr.DataArray(
        values,
        dims="sample",
        attrs={"long_name": "time of the first step this sample was made for"},
    )
    coord.encoding = {k: first.encoding[k] for k in ("units", "calendar") if k in first.encoding}
    return coord


def check_samples(trained: Trained, values: np.ndarray) -> None:
    """Refuse (``CheckpointError``) the samples of a blown-up generator.

    ``values``: ``(N, T, C, H, W)`` in physical units, NaN on the static mask. Refused
    when a value off the static mask is NaN/Inf, or when a variable's normalized value
    (train mean 0, spread 1) reaches ``FAR_OUTSIDE``: trained data lie within a few units,
    so such a value comes from weights that exploded, not from a tail of the data.
    Variables with transform ``none`` have no train scale and get the NaN/Inf check only.
    """
    names = list(trained.grid["variables"])
    valid = ~cf.static_mask(trained.grid)  # (C, H, W)
    bad = ~np.isfinite(values) & valid  # (N, T, C, H, W)
    if bad.any():
        where = [n for c, n in enumerate(names) if bad[:, :, c].any()]
        cells = int(valid.sum()) * values.shape[0] * values.shape[1]
        raise CheckpointError(
            f"{trained.path}: its generator produces non-finite values ({int(bad.sum())} of "
            f"{cells} in {', '.join(where)}; training diverged); {_EARLIER}"
        )
    z, _ = trained.transforms.forward(values, channel_axis=2)  # NaN filled with 0
    for c, (name, transform) in enumerate(trained.transforms.variables.items()):
        if transform.kind == "none":
            continue
        far = float(np.abs(z[:, :, c]).max())
        if far >= FAR_OUTSIDE:
            extreme = float(np.nanmax(np.abs(values[:, :, c])))
            raise CheckpointError(
                f"{trained.path}: its generator produces {name} of magnitude up to {extreme:.3g}, "
                f"{far:.3g} {_SPREAD.get(transform.kind, 'train scales')} from the training "
                f"data's centre (limit {FAR_OUTSIDE:g}; training diverged); {_EARLIER}"
            )


def check_count(name: str, value: int) -> int:
    """Raise ``SpecError`` unless ``value`` >= 1 (``--num``, ``--length``, ``--batch-size``)."""
    if value < 1:
        flag = name.replace("_", "-")
        raise SpecError(f"--{flag} {value}: must be >= 1")
    return value


def check_length(trained: Trained, length: int) -> int:
    """``length`` if the generator can make it; conv3d makes exactly its trained length."""
    check_count("length", length)
    name = trained.config.model.generator.name
    if length != trained.frames and name == "conv3d":
        raise SpecError(
            f"--length {length}: the conv3d generator of {trained.path.name} makes exactly "
            f"{trained.frames} steps; omit --length, or train a recurrent generator "
            "(convgru, convlstm)"
        )
    return length


# ---------------------------------------------------------------------------
# Loading a checkpoint
# ---------------------------------------------------------------------------


def _checkpoints_dir(run: Path) -> Path:
    return run / "checkpoints" if (run / "checkpoints").is_dir() else run


def _named_checkpoint(path: Path) -> Path | None:
    """The file given, or the run's ``best.pt``; None when the newest valid ``ckpt_*.pt``
    must be found by loading."""
    if not path.is_dir():
        return path
    best = _checkpoints_dir(path) / "best.pt"
    return best if best.is_file() else None


def read_checkpoint(path: str | Path) -> tuple[Path, dict]:
    """A checkpoint file as given, or the one to use in a run (or checkpoints) directory
    (``best.pt``, else the newest ``ckpt_*.pt`` that loads), with its state, read once."""
    path = Path(path)
    named = _named_checkpoint(path)
    if named is not None:
        return named, ckpt.load_checkpoint(named)
    newest = ckpt.load_latest(_checkpoints_dir(path))
    if newest is None:
        raise CheckpointError(
            f"{path}: no checkpoint found (looked for best.pt and ckpt_*.pt in "
            f"{_checkpoints_dir(path)}); train first or give a checkpoint file"
        )
    return newest


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint file that ``read_checkpoint`` would read, loaded only when the
    newest valid ``ckpt_*.pt`` has to be found."""
    named = _named_checkpoint(Path(path))
    return named if named is not None else read_checkpoint(path)[0]


def load_trained(checkpoint: str | Path, device: torch.device) -> Trained:
    """Load and check a checkpoint; rebuild its EMA generator on ``device`` in eval mode.

    Raises
    ------
    CheckpointError
        If the checkpoint is unreadable, from an incompatible stgan version or config,
        or lacks grid metadata that cannot be recovered from the run and its data.
    """
    path, state = read_checkpoint(checkpoint)
    for key in ("version", "config", "EMA"):
        if key not in state:
            raise CheckpointError(
                f"{path}: not an stgan training checkpoint (no '{key}'); "
                "pick a ckpt_*.pt written by stgan train"
            )
    version = str(state["version"])
    check_version(version, path)
    config = _config(state["config"], path, version)
    grid = _grid(state.get("grid"), config, path)
    transforms = _transforms(state.get("transforms"), path)
    _check_variables(config, grid, transforms, path)
    generator = _generator(config, grid, state["EMA"], path).to(device)
    return Trained(path, config, state["config"], grid, transforms, generator)


def check_version(saved: str, path: Path) -> None:
    """Same major version (and, before 1.0, same minor) as this stgan, or ``CheckpointError``."""
    if _release(saved) != _release(__version__):
        raise CheckpointError(
            f"{path}: written by stgan {saved}, which is incompatible with this stgan "
            f"{__version__}; generate with stgan {saved}"
        )


def _release(version: str) -> tuple[str, ...]:
    parts = version.split(".")
    return tuple(parts[:2]) if parts[0] == "0" else tuple(parts[:1])


def _config(raw: dict, path: Path, version: str) -> PipelineConfig:
    try:
        return pipeline_from_dict(raw)
    except SpecError as exc:
        raise CheckpointError(
            f"{path}: its config does not validate in stgan {__version__} ({exc}); "
            f"generate with stgan {version}, which trained it"
        ) from None


def _grid(stored: dict | None, config: PipelineConfig, path: Path) -> dict:
    """The stored grid description; older checkpoints: re-open the training data."""
    if stored is not None:
        if stored.get("format") != cf.GRID_FORMAT:
            raise CheckpointError(
                f"{path}: grid metadata format {stored.get('format')!r} is not "
                f"{cf.GRID_FORMAT}; generate with the stgan version that wrote it"
            )
        return stored
    try:
        return cf.describe_grid(open_source(config.spec), config.spec.patch)
    except StganError as exc:
        raise CheckpointError(
            f"{path}: the checkpoint lacks grid metadata and its training data cannot be "
            f"opened ({exc}); make the data files named in its config available again, "
            "or use a checkpoint written by a newer stgan (which stores the grid)"
        ) from None


def _transforms(stored: dict | None, path: Path) -> Transforms:
    """From the checkpoint, else from the run's transforms.json (older checkpoints)."""
    if stored is not None:
        try:
            return Transforms.from_dict(stored)
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: malformed 'transforms' entry ({exc})") from None
    for candidate in (path.parent.parent / "transforms.json", path.parent / "transforms.json"):
        if candidate.is_file():
            return Transforms.load(candidate)
    raise CheckpointError(
        f"{path}: the checkpoint lacks its transforms and no transforms.json is in its run "
        f"directory ({path.parent.parent}); copy the run's transforms.json there"
    )


def _check_variables(
    config: PipelineConfig, grid: dict, transforms: Transforms, path: Path
) -> None:
    expected = config.spec.variable_names
    for what, names in (
        ("grid", list(grid["variables"])),
        ("transforms", list(transforms.variables)),
    ):
        if names != expected:
            raise CheckpointError(
                f"{path}: its {what} describes variables {names} but its config has {expected}; "
                "the checkpoint is inconsistent, use another one"
            )


def _generator(config: PipelineConfig, grid: dict, weights: dict, path: Path) -> Generator:
    height, width = cf.grid_shape(grid)
    cycles = calendar.model_cycles(grid, config.model.generator.calendar)
    generator = build_generator(
        config.model.generator,
        len(grid["variables"]),
        height,
        width,
        config.output_frames,
        calendar.count(cycles),
    )
    try:
        generator.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: its EMA weights do not fit the generator its config describes "
            f"({_mismatch(exc)}); the checkpoint is from an incompatible stgan or config"
        ) from None
    return generator.eval().requires_grad_(False)


def _mismatch(exc: RuntimeError, limit: int = 300) -> str:
    """``load_state_dict``'s reasons on one line: the keys missing, unexpected or resized
    (its first line, "Error(s) in loading state_dict", names none)."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    detail = " ".join(lines[1:]) or lines[0]
    return detail if len(detail) <= limit else detail[: limit - 3] + "..."


# ---------------------------------------------------------------------------
# Context, sampling, dataset
# ---------------------------------------------------------------------------


def read_context(
    trained: Trained, context: str | Path | xr.Dataset | None
) -> tuple[torch.Tensor | None, object | None]:
    """The normalized past ``(1, T_in, C, H, W)`` and its last time.

    ``(None, None)`` for an unconditional generator (which must get no context).
    """
    if trained.conditional != (context is not None):
        if trained.conditional:
            raise SpecError(
                f"{trained.path.name} holds a conditional (nowcasting) generator; pass --context "
                f"FILE.nc with at least {trained.context_frames} past steps on the training grid"
            )
        raise SpecError(
            f"--context: {trained.path.name} holds an unconditional generator, which takes "
            "no context; drop --context"
        )
    if context is None:
        return None, None
    where = f"--context {context}" if not isinstance(context, xr.Dataset) else "context"
    ds = _open_context(context, where)
    try:
        past = _past_steps(ds, trained, where).load()  # (T_in, C, H, W), physical units
    finally:
        if ds is not context:
            ds.close()
    z, _ = trained.transforms.forward(past.values, channel_axis=1)  # missing cells filled
    time = past.indexes[trained.grid["dims"]["time"]]
    return torch.from_numpy(z).unsqueeze(0), time[-1]


def _open_context(context: str | Path | xr.Dataset, where: str) -> xr.Dataset:
    if isinstance(context, xr.Dataset):
        return context
    if not Path(context).is_file():
        raise DataError(f"{where}: file not found; check the path")
    return open_file(Path(context))


def _past_steps(ds: xr.Dataset, trained: Trained, where: str) -> xr.DataArray:
    """The last ``context_frames`` steps as ``(time, variable, y, x)`` on the training grid."""
    grid, n = trained.grid, trained.context_frames
    names = grid["dims"]
    missing = [v for v in grid["variables"] if v not in ds.data_vars]
    if missing or names["time"] not in ds.dims:
        raise DataError(
            f"{where}: needs variables {list(grid['variables'])} along dim '{names['time']}'; "
            f"it has variables {list(map(str, ds.data_vars))} and dims {list(map(str, ds.dims))}"
        )
    ds = cf.select_grid(ds[list(grid["variables"])], grid, where)
    if ds.sizes[names["time"]] < n:
        raise DataError(
            f"{where}: has {ds.sizes[names['time']]} time steps; the generator needs the last {n}"
        )
    ds = ds.isel({names["time"]: slice(-n, None)})
    _check_context_time(ds.indexes[names["time"]], grid, where)
    stacked = ds.to_dataarray("variable").transpose(
        names["time"], "variable", names["y"], names["x"]
    )
    return stacked.astype(np.float32)


def _check_context_time(time, grid: dict, where: str) -> None:
    calendar = getattr(time, "calendar", "standard")
    if not cf.same_calendar(calendar, grid["time"]["calendar"]):
        raise DataError(
            f"{where}: its times use the {calendar} calendar, the training data "
            f"the {grid['time']['calendar']} calendar; convert the context first"
        )
    step = grid["time"]["step_seconds"]
    deltas = [(b - a).total_seconds() for a, b in zip(time[:-1], time[1:])]
    if any(d != step for d in deltas):
        raise DataError(
            f"{where}: its last {len(time)} steps are not {step} s apart as in the training "
            f"data (found {sorted(set(deltas))} s); give a gap-free context"
        )


def sample(
    trained: Trained,
    num: int,
    frames: int,
    seed: int,
    context: torch.Tensor | None,
    batch_size: int,
    progress: bool,
    days: np.ndarray | None = None,
) -> np.ndarray:
    """``num`` sequences in physical units, float32 ``(N, T, C, H, W)``, static mask NaN;
    ``days``: their calendar features (``sample_sequences``' ``calendar``)."""
    out = sample_sequences(
        trained.generator,
        trained.transforms,
        num,
        frames,
        seed,
        context,
        batch_size,
        progress,
        calendar=days,
    )
    out[:, :, cf.static_mask(trained.grid)] = np.nan
    return out


@torch.no_grad()
def sample_sequences(
    g: Generator,
    transforms: Transforms,
    num: int,
    frames: int,
    seed: int,
    context: torch.Tensor | None = None,
    batch_size: int = 16,
    progress: bool = False,
    calendar: np.ndarray | torch.Tensor | None = None,
) -> np.ndarray:
    """The one way stgan samples a generator for people and for scoring.

    Sample ``i`` draws its latents from seed ``(seed, i)`` on the CPU, so the output does not
    depend on ``batch_size`` or the device (up to float rounding). ``context``: normalized
    ``(1 or num, T_in, C, H, W)`` past frames of a conditional generator. ``calendar``:
    ``(1 or num, frames, F)`` calendar features of the frames of each sample (one row for
    all, or sample ``i`` gets row ``i % len``), for a generator built with F > 0. Returns
    float32 ``(num, frames, C, H, W)`` in physical units.
    """
    device = next(g.parameters()).device
    if calendar is not None:
        calendar = torch.as_tensor(calendar, dtype=torch.float32)
    out = None
    for start in tqdm(
        range(0, num, batch_size), desc="generate", unit="batch", disable=not progress
    ):
        stop = min(start + batch_size, num)
        z, noise = draw_latents(g, frames, [sample_seed(seed, i) for i in range(start, stop)])
        past = None if context is None else _rows(context, start, stop).to(device)
        days = None if calendar is None else _rows(calendar, start, stop).to(device)
        x = g(z.to(device), noise.to(device), past, days)  # (B, T, C, H, W), normalized
        physical = transforms.inverse(x.float().cpu(), channel_axis=2).numpy()
        if out is None:
            out = np.empty((num, *physical.shape[1:]), np.float32)
        out[start:stop] = physical
    return out


def _rows(inputs: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """The context (or calendar) of samples ``start .. stop``: one row for all, or sample
    ``i`` gets row ``i % len(inputs)``."""
    if len(inputs) == 1:
        return inputs.expand(stop - start, *inputs.shape[1:])
    return inputs[torch.arange(start, stop) % len(inputs)]


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index``: independent streams from one user seed."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0])


def draw_latents(g: Generator, frames: int, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``Generator.latents`` for one sample per seed, drawn on the CPU (so a seed gives the
    same latents on every device): z ``(B, latent_dim)``, noise ``(B, steps, ...)``."""
    drawn = [g.latents(1, frames, torch.Generator().manual_seed(s), device="cpu") for s in seeds]
    return torch.cat([z for z, _ in drawn]), torch.cat([noise for _, noise in drawn])


def build_dataset(
    trained: Trained,
    values: np.ndarray,
    times: xr.DataArray,
    seed: int,
    last_time,
    given: bool = False,
) -> xr.Dataset:
    """The samples as a CF-ready dataset on the training grid."""
    grid = trained.grid
    names = grid["dims"]
    dims = ("sample", names["time"], names["y"], names["x"])
    data_vars = {
        name: (dims, values[:, :, c], cf.cf_attrs(name, grid["variables"][name]))
        for c, name in enumerate(grid["variables"])
    }
    sample_coord = xr.Variable(
        "sample",
        np.arange(values.shape[0], dtype=np.int32),
        {"standard_name": "realization", "long_name": "sample number", "units": "1"},
    )
    coords = {"sample": sample_coord, names["time"]: times, **cf.grid_coords(grid)}
    attrs = _global_attrs(trained, seed, last_time, times, given)
    return xr.Dataset(data_vars, coords, attrs=attrs)


def _unconditional_comment(trained: Trained, times: xr.DataArray, given: bool) -> str:
    first = times.to_index()[0].isoformat()
    where = "the start asked for" if given else "by default the first time of the training data"
    if not trained.cycles:
        return (
            f"Unconditional samples: the time coordinate starts at {first} ({where}); the "
            "generator takes no calendar inputs, so the samples are not for those dates."
        )
    return (
        f"Unconditional samples made for the times of the time coordinate, from {first} "
        f"({where}): the generator is conditioned on the {', '.join(trained.cycles)} "
        "cycle(s) of the calendar: the data's behaviour at those times of day, week or year, not forecasts."
    )


def _global_attrs(trained: Trained, seed: int, last_time, times: xr.DataArray, given: bool) -> dict:
    kept = dict(trained.grid["global_attrs"])
    name = trained.config.spec.name
    gcfg = trained.config.model.generator
    if last_time is None:
        comment = _unconditional_comment(trained, times, given)
    else:
        comment = (
            f"Nowcasts: every sample continues the same {trained.context_frames} context "
            f"steps ending {last_time.isoformat()}; the time coordinate follows on from it."
        )
    trained_on = kept.get("source") or f"the {name} data set"
    return {
        **kept,
        "title": f"stgan synthetic sequences of {name}"
        + (f" (trained on: {kept['title']})" if "title" in kept else ""),
        "source": f"stgan {__version__}, {gcfg.name} generator (EMA weights) of "
        f"{trained.path.name}; trained on: {trained_on}",
        "comment": comment,
        "stgan_checkpoint": str(trained.path.resolve()),
        "stgan_seed": seed,
        # the calendar cycles the samples are made for ("none": the time is a label only)
        "stgan_calendar_cycles": " ".join(trained.cycles) or "none",
        "stgan_config": yaml.safe_dump(trained.config_dict, sort_keys=False),
    }
