"""The data spec: which files, variables, dims, windows and splits a run uses.

A spec is YAML (see ``data_specs/``), read once by :func:`load_spec` into the
frozen :class:`DataSpec`; everything downstream takes the typed object.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from stgan.config import build, load_yaml
from stgan.errors import SpecError

Transform = Literal["standardize", "minmax", "log1p", "none"]

SPLITS = ("train", "val", "test")  # the split names a spec may define, in time order


@dataclass(frozen=True)
class VariableSpec:
    """One variable, stacked as one channel, and its normalization."""

    transform: Transform = "standardize"


@dataclass(frozen=True)
class DimsSpec:
    """Dim names; ``None`` means detect from CF attributes and common names."""

    time: str | None = None
    y: str | None = None
    x: str | None = None


@dataclass(frozen=True)
class CropSpec:
    """Spatial crop: half-open index ranges, or closed coordinate ranges with ``by: coords``."""

    y: tuple[float, float] | None = None
    x: tuple[float, float] | None = None
    by: Literal["index", "coords"] = "index"

    def validate(self, where: str) -> None:
        for axis in ("y", "x"):
            bounds = getattr(self, axis)
            if bounds is None or self.by == "coords":
                continue
            if any(b != int(b) for b in bounds) or not 0 <= bounds[0] < bounds[1]:
                raise SpecError(
                    f"{where}.{axis}: index range {list(bounds)} must be two integers "
                    f"0 <= start < stop; use 'by: coords' for coordinate values"
                )


@dataclass(frozen=True)
class WindowSpec:
    """Training windows: ``length`` time steps, a new window every ``stride`` steps."""

    length: int
    stride: int = 1

    def validate(self, where: str) -> None:
        if self.length < 2:
            raise SpecError(f"{where}.length: {self.length} is too short; use at least 2")
        if self.stride < 1:
            raise SpecError(f"{where}.stride: {self.stride} must be >= 1")


@dataclass(frozen=True)
class SplitSpec:
    """Train/val/test by date ranges ``[start, end]`` (inclusive) or by fractions of time."""

    train: tuple[str, str] | None = None
    val: tuple[str, str] | None = None
    test: tuple[str, str] | None = None
    fractions: tuple[float, float, float] | None = None

    def validate(self, where: str) -> None:
        dated = any(getattr(self, n) is not None for n in ("train", "val", "test"))
        if dated == (self.fractions is not None):
            raise SpecError(
                f"{where}: give either date ranges (train/val/test: [start, end]) "
                f"or fractions: [train, val, test], not both and not neither"
            )
        if dated and self.train is None:
            raise SpecError(f"{where}.train: required when splitting by dates")
        if self.fractions is not None:
            if any(f < 0 for f in self.fractions) or sum(self.fractions) > 1 + 1e-9:
                raise SpecError(
                    f"{where}.fractions: {list(self.fractions)} must be >= 0 and sum to at most 1"
                )
            if self.fractions[0] <= 0:
                raise SpecError(f"{where}.fractions: the train fraction must be > 0")

    @property
    def names(self) -> tuple[str, ...]:
        """The splits this spec defines, in time order: those given a date range, or a
        fraction > 0 (a fraction too small to hold a time step is found with the data)."""
        if self.fractions is not None:
            return tuple(name for name, f in zip(SPLITS, self.fractions) if f > 0)
        return tuple(name for name in SPLITS if getattr(self, name) is not None)


@dataclass(frozen=True)
class DataSpec:
    """A dataset: files, variables (channels), dims, crop, windows and splits."""

    files: tuple[str, ...]
    variables: dict[str, VariableSpec]
    window: WindowSpec
    split: SplitSpec
    name: str = "data"
    dims: DimsSpec = field(default_factory=DimsSpec)
    crop: CropSpec | None = None
    coarsen: int = 1
    patch: int | None = None
    cache: Literal["none", "memory"] = "none"
    seed: int = 0
    base_dir: str = field(default=".", metadata={"internal": True})  # where files resolve

    def validate(self, where: str) -> None:
        if not self.files:
            raise SpecError(f"{_at(where, 'files')}: list at least one file or glob")
        if not self.variables:
            raise SpecError(f"{_at(where, 'variables')}: name at least one variable")
        if self.coarsen < 1:
            raise SpecError(f"{_at(where, 'coarsen')}: {self.coarsen} must be >= 1")
        if self.patch is not None and self.patch < 1:
            raise SpecError(f"{_at(where, 'patch')}: {self.patch} must be >= 1")

    @property
    def variable_names(self) -> list[str]:
        return list(self.variables)


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def load_spec(path: str | Path) -> DataSpec:
    """Read and validate a data spec YAML file; relative file paths resolve against it."""
    path = Path(path)
    data = load_yaml(path)
    try:
        return spec_from_dict(data, base_dir=path.resolve().parent)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


def spec_from_dict(data: dict, base_dir: str | Path = ".", where: str = "") -> DataSpec:
    """Validate a spec given as a mapping (e.g. inline in a pipeline config)."""
    data = dict(data)
    if isinstance(data.get("files"), str):
        data["files"] = [data["files"]]
    if isinstance(data.get("variables"), list):
        data["variables"] = {str(name): {} for name in data["variables"]}
    if isinstance(data.get("variables"), dict):
        data["variables"] = {k: ({} if v is None else v) for k, v in data["variables"].items()}
    if "base_dir" in data:
        raise SpecError("base_dir: unknown key; file paths are relative to the spec file")
    spec = build(DataSpec, data, where)
    return replace(spec, base_dir=str(base_dir))
