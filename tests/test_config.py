from dataclasses import dataclass, field
from typing import Literal

import pytest

from stgan.config import build, load_yaml, to_dict
from stgan.errors import SpecError


@dataclass(frozen=True)
class Inner:
    rate: float = 0.1
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    name: str
    steps: int = 10
    shape: tuple[int, int] | None = None
    inner: Inner = field(default_factory=Inner)


def test_build_nested_and_coerces_int_to_float():
    cfg = build(Outer, {"name": "x", "inner": {"rate": 1}, "shape": [2, 3]}, "")
    assert cfg == Outer("x", 10, (2, 3), Inner(1.0, "a"))
    assert to_dict(cfg) == {
        "name": "x",
        "steps": 10,
        "shape": [2, 3],
        "inner": {"rate": 1.0, "mode": "a"},
    }


def test_unknown_key_suggests_closest():
    with pytest.raises(SpecError, match=r"inner\.rat: unknown key; did you mean 'rate'\?"):
        build(Outer, {"name": "x", "inner": {"rat": 1}}, "")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"name": "x", "steps": "ten"}, r"steps: expected int, found 'ten'"),
        ({"name": "x", "steps": True}, r"steps: expected int, found True"),
        (
            {"name": "x", "inner": {"mode": "c"}},
            r"inner\.mode: 'c' is not allowed; choose one of 'a', 'b'",
        ),
        ({"name": "x", "shape": [1]}, r"shape: expected a list of 2 values"),
        ({}, r"name: required key is missing"),
    ],
)
def test_wrong_values_name_the_key(mapping, message):
    with pytest.raises(SpecError, match=message):
        build(Outer, mapping, "")


def test_yaml_syntax_error_gives_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(SpecError, match=r"bad.yaml: YAML syntax error at line \d+"):
        load_yaml(path)


def test_missing_yaml_file(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_yaml(tmp_path / "nope.yaml")


def test_a_directory_is_not_called_missing(tmp_path):
    with pytest.raises(SpecError, match="is a directory, not a YAML file"):
        load_yaml(tmp_path)


def test_a_binary_file_is_one_line(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"files: data.nc\n\xff\xfe\x00\x81 binary")
    with pytest.raises(SpecError, match=r"spec.yaml: not a text file \(byte 15 is not UTF-8\)"):
        load_yaml(path)


def test_nan_is_not_a_number_for_a_float_key():
    with pytest.raises(SpecError, match="inner.rate: NaN is not a value; give a number"):
        build(Outer, {"name": "x", "inner": {"rate": float("nan")}}, "")
