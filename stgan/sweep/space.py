"""The search space of a sweep: ``--space`` items parsed into params, and values written
back as ``--set`` text."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import yaml

from stgan.errors import SpecError
from stgan.training.config import apply_overrides

# Learning rates are scale parameters: sampled log-uniformly unless told ``:linear``.
LOG_KEYS = ("lr", "lr_g", "lr_d")
LOG_SPAN = 100  # a range spanning two decades or more is sampled log-uniformly too


@dataclass(frozen=True)
class Param:
    """One swept config key: a numeric range (linear or log) or a list of choices."""

    key: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def is_range(self) -> bool:
        return not self.choices

    def suggest(self, trial: optuna.Trial) -> Any:
        """The value of this key for ``trial`` (drawn by its sampler, or fixed by a retry)."""
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.key, self.low, self.high, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def probes(self) -> tuple[Any, ...]:
        """Values to validate the config with: every choice, or both ends of the range."""
        return self.choices or (self.low, self.high)

    def __str__(self) -> str:
        if self.choices:
            return f"{self.key}={','.join(format_value(v) for v in self.choices)}"
        scale = "log" if self.log else "linear"
        return f"{self.key}={format_value(self.low)}:{format_value(self.high)}:{scale}"


def parse_space(items: Iterable[str]) -> tuple[Param, ...]:
    """Parse ``--space`` items; see :func:`parse_param`. Each key may appear once."""
    space = tuple(parse_param(item) for item in items)
    keys = [p.key for p in space]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise SpecError(f"--space {repeated[0]}: given twice; give each key once")
    if not space:
        raise SpecError("--space: nothing to sweep; give at least one, e.g. optim.lr_g=1e-5:1e-3")
    return space


def parse_param(item: str) -> Param:
    """Parse one ``--space`` item.

    ``key=lo:hi`` is a uniform range, integer when both bounds are integers;
    ``key=lo:hi:log`` or ``:linear`` sets the scale, which otherwise is log when lo > 0
    and the key is a learning rate (``lr``, ``lr_g``, ``lr_d``) or hi / lo >= 100;
    ``key=a,b,c`` lists choices, each read as YAML like ``--set`` values.
    """
    key, sep, text = item.partition("=")
    key, text = key.strip(), text.strip()
    if not sep or not key or not text:
        raise SpecError(
            f"--space {item!r}: expected key=lo:hi, key=lo:hi:log or key=a,b,c, "
            "e.g. optim.lr_g=1e-5:1e-3"
        )
    if "," in text:
        return Param(key, choices=_parse_choices(item, text))
    if ":" in text:
        return _parse_range(item, key, text)
    return Param(key, choices=_parse_choices(item, text))


def _parse_choices(item: str, text: str) -> tuple[Any, ...]:
    pieces = [piece.strip() for piece in text.split(",")]
    if not all(pieces):
        raise SpecError(f"--space {item!r}: empty choice; separate values by single commas")
    values = tuple(parse_value(piece) for piece in pieces)
    for value in values:
        if value is not None and not isinstance(value, bool | int | float | str):
            raise SpecError(
                f"--space {item!r}: choice {value!r} is not a number, string or boolean; "
                "list plain values"
            )
    if len(set(map(repr, values))) < len(values):
        raise SpecError(f"--space {item!r}: a choice is listed twice; list each value once")
    return values


def _parse_range(item: str, key: str, text: str) -> Param:
    parts = [part.strip() for part in text.split(":")]
    if len(parts) not in (2, 3):
        raise SpecError(f"--space {item!r}: malformed range; expected lo:hi or lo:hi:log")
    low, high = parse_value(parts[0]), parse_value(parts[1])
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        raise SpecError(f"--space {item!r}: malformed range; lo and hi must be numbers")
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise SpecError(f"--space {item!r}: lo {low} must be below hi {high}")
    scale = parts[2] if len(parts) == 3 else None
    if scale not in (None, "log", "linear"):
        raise SpecError(f"--space {item!r}: scale {scale!r} is not allowed; use log or linear")
    log = scale == "log" or (scale is None and _log_by_default(key, low, high))
    if log and low <= 0:
        raise SpecError(f"--space {item!r}: a log range needs lo > 0; use :linear or raise lo")
    if not (isinstance(low, int) and isinstance(high, int)):
        low, high = float(low), float(high)
    return Param(key, low=low, high=high, log=log)


def _log_by_default(key: str, low: float, high: float) -> bool:
    return low > 0 and (key.rsplit(".", 1)[-1] in LOG_KEYS or high / low >= LOG_SPAN)


def parse_value(text: str) -> Any:
    """Read one value exactly as ``--set key=value`` reads it (YAML, 2e-4 as a float)."""
    try:
        return apply_overrides({}, (f"value={text}",))["value"]
    except yaml.YAMLError:
        raise SpecError(f"--space value {text!r}: not valid YAML; quote it or fix it") from None


def format_value(value: Any) -> str:
    """The ``--set`` text that :func:`parse_value` reads back as ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def overrides(params: Mapping[str, Any]) -> tuple[str, ...]:
    """``key=value`` overrides for ``load_pipeline`` (and ``--set``)."""
    return tuple(f"{key}={format_value(value)}" for key, value in params.items())


def set_line(params: Mapping[str, Any]) -> str:
    """``--set key=value --set ...``, ready to paste after ``stgan train``."""
    return " ".join(f"--set {item}" for item in overrides(params))


def grid_points(space: Sequence[Param]) -> Iterable[dict[str, Any]]:
    """Every combination of the choices, in the order listed (the first key slowest)."""
    for values in itertools.product(*(p.choices for p in space)):
        yield dict(zip((p.key for p in space), values))
