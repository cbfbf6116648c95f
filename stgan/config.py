"""Typed, frozen configs built once from YAML, with errors that name the key.

``build(cls, mapping, where)`` turns a plain mapping (from YAML) into a frozen
dataclass, checking every key and value against the dataclass's type hints:
an unknown key suggests the closest valid one, a wrong type names the value and
what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from stgan.errors import SpecError, reason


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping with ``safe_load``; errors name the file and line."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"{path}: is a directory, not a YAML file; give the file's path")
    if not path.is_file():
        raise SpecError(f"{path}: file not found; check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8); give a YAML file"
        ) from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read it ({reason(exc)})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{path}: YAML syntax error{line}: {problem}; fix the YAML") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a YAML mapping of keys, found {type(data).__name__}")
    return data


def build(cls: type, mapping: Any, where: str) -> Any:
    """Validate ``mapping`` against dataclass ``cls`` and return a frozen instance.

    Parameters
    ----------
    cls : dataclass type
        Target config class; its type hints define what is allowed.
    mapping : Any
        Plain data from YAML.
    where : str
        Dotted path of this section, used in error messages (e.g. ``"window"``).
    """
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        raise SpecError(f"{where}: expected a mapping, found {mapping!r}")
    # Fields marked metadata={"internal": True} are set by code, never by a user's YAML.
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    hints = typing.get_type_hints(cls)
    for key in mapping:
        if key not in fields:
            raise SpecError(f"{_join(where, key)}: unknown key{_suggest(str(key), fields)}")
    values = {}
    for name, field in fields.items():
        key = _join(where, name)
        if name in mapping:
            values[name] = _coerce(hints[name], mapping[name], key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise SpecError(f"{key}: required key is missing")
    instance = cls(**values)
    check = getattr(instance, "validate", None)
    if check is not None:
        check(where)
    return instance


def to_dict(config: Any) -> Any:
    """Turn a config (nested dataclasses, tuples) back into plain YAML-able data."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _suggest(key: str, valid: Any) -> str:
    names = sorted(str(v) for v in valid)
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{hint} valid keys: {', '.join(names)}"


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, key)
            except SpecError as exc:
                errors.append(str(exc))
        raise SpecError(errors[0] if len(errors) == 1 else f"{key}: {value!r} is not allowed here")
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise SpecError(
                f"{key}: {value!r} is not allowed{_closest(value, args)}; choose one of {allowed}"
            )
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{key}: expected a list, found {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise SpecError(f"{key}: expected a list of {len(args)} values, found {value!r}")
        return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise SpecError(f"{key}: expected a mapping, found {value!r}")
        return {str(k): _coerce(args[1], v, _join(key, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):  # built already, e.g. a data spec read from its own file
            return value
        return build(hint, value, key)
    return _scalar(hint, value, key)


def _closest(value: Any, options: tuple) -> str:
    close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _scalar(hint: Any, value: Any, key: str) -> Any:
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isnan(value):  # compares false with every bound a validate() checks
                raise SpecError(f"{key}: NaN is not a value; give a number")
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
        if hasattr(value, "isoformat"):  # YAML turns 2019-03-01 into a date
            return value.isoformat()
    else:
        raise TypeError(f"unsupported config type {hint!r} at {key}")
    raise SpecError(f"{key}: expected {hint.__name__}, found {value!r}")
