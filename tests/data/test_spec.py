import pytest

from stgan.data.spec import load_spec
from stgan.errors import SpecError
from tests.conftest import write_spec


def test_load_spec_defaults(tiny):
    spec = load_spec(tiny / "spec.yaml")
    assert spec.files == ("data.nc",)
    assert spec.variable_names == ["tas"]
    assert spec.window.length == 4 and spec.window.stride == 2
    assert spec.base_dir == str(tiny)


def test_variables_as_list(tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml", variables=["a", "b"]))
    assert spec.variables["a"].transform == "standardize"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"windw": {"length": 4}}, r"windw: unknown key; did you mean 'window'\?"),
        ({"window": {"length": 1}}, r"window\.length: 1 is too short"),
        ({"window": {"length": "4"}}, r"window\.length: expected int"),
        (
            {"variables": {"tas": {"transform": "log"}}},
            r"'log' is not allowed \(did you mean 'log1p'\?\)",
        ),
        ({"split": {"fractions": [0.8, 0.3, 0.1]}}, r"sum to at most 1"),
        (
            {"split": {"fractions": [0.5, 0.5, 0], "train": ["2000-01-01", "2000-01-02"]}},
            "not both",
        ),
        ({"crop": {"y": [3, 1]}}, r"crop\.y: index range"),
        ({"coarsen": 0}, r"coarsen: 0 must be >= 1"),
    ],
)
def test_bad_spec_values(tmp_path, fields, message):
    path = write_spec(tmp_path / "s.yaml", **fields)
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_error_names_the_spec_file(tmp_path):
    path = write_spec(tmp_path / "s.yaml", windw={"length": 4})
    with pytest.raises(SpecError, match=r"s\.yaml: windw"):
        load_spec(path)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("split", "names"),
    [
        ({"fractions": [0.5, 0.25, 0.25]}, ("train", "val", "test")),
        ({"fractions": [0.7, 0.3, 0.0]}, ("train", "val")),
        ({"fractions": [0.8, 0.0, 0.2]}, ("train", "test")),
        (
            {"train": ["2000-01-01", "2000-01-02"], "test": ["2000-01-03", "2000-01-04"]},
            ("train", "test"),
        ),
    ],
)
def test_split_names_are_the_splits_the_spec_defines(tmp_path, split, names):
    assert load_spec(write_spec(tmp_path / "s.yaml", split=split)).split.names == names
