import numpy as np
import pytest
import torch

from stgan.data import load_spec, prepare
from stgan.data.transforms import FILL_VALUE, Transforms, VariableTransform, fit_transforms
from stgan.errors import DataError
from tests.conftest import make_dataset, write_spec


@pytest.mark.parametrize("kind", ["standardize", "minmax", "log1p", "none"])
def test_round_trip_float32(kind):
    rng = np.random.default_rng(0)
    x = (rng.gamma(2.0, 30.0, size=(50, 2, 7, 9)) + 0.5).astype(np.float32)
    stats = {
        "c": {
            "mean": float(x.mean()),
            "std": float(x.std()),
            "min": float(x.min()),
            "max": float(x.max()),
            "log_mean": float(np.log1p(x).mean()),
            "log_std": float(np.log1p(x).std()),
        }
    }
    t = fit_transforms({"a": stats["c"], "b": stats["c"]}, {"a": kind, "b": kind})
    z, mask = t.forward(x, channel_axis=1)
    assert z.dtype == np.float32 and mask.all()
    back = t.inverse(z, channel_axis=1)
    np.testing.assert_allclose(back, x, rtol=1e-5)
    back_torch = t.inverse(torch.from_numpy(z), channel_axis=1)
    assert back_torch.dtype == torch.float32
    np.testing.assert_allclose(back_torch.numpy(), x, rtol=1e-5)


def test_standardize_and_minmax_ranges():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    s = {"mean": 4.5, "std": float(np.std(np.arange(10))), "min": 0.0, "max": 9.0}
    t = fit_transforms({"v": s}, {"v": "minmax"})
    z, _ = t.forward(x, channel_axis=1)
    assert z.min() == -1 and z.max() == 1
    t = fit_transforms({"v": s}, {"v": "standardize"})
    z, _ = t.forward(x, channel_axis=1)
    assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-6


def test_nan_becomes_mask_and_fill_value():
    t = Transforms({"v": VariableTransform("standardize", 1.0, 2.0)})
    x = np.array([1.0, np.nan, 5.0], dtype=np.float32).reshape(3, 1, 1, 1)
    z, mask = t.forward(x, channel_axis=1)
    assert np.isfinite(z).all()
    np.testing.assert_array_equal(mask.ravel(), [True, False, True])
    np.testing.assert_array_equal(z.ravel(), [0.0, FILL_VALUE, 2.0])


def test_fitted_on_train_split_only(tmp_path):
    ds = make_dataset(nt=40, nan_cells=((0, 0),))
    ds["tas"][20:] += 100  # val/test differ wildly: must not leak into the fit
    ds.to_netcdf(tmp_path / "data.nc")
    data = prepare(
        load_spec(write_spec(tmp_path / "spec.yaml", split={"fractions": [0.5, 0.25, 0.25]}))
    )
    train = ds["tas"].values[:20].astype(np.float64)
    stats = data.stats["tas"]
    assert stats["mean"] == pytest.approx(np.nanmean(train), rel=1e-10)
    assert stats["std"] == pytest.approx(np.nanstd(train), rel=1e-10)
    assert stats["nan_fraction"] == pytest.approx(1 / 48)
    assert data.transforms.variables["tas"].offset == pytest.approx(np.nanmean(train))


def test_json_round_trip(tmp_path):
    t = Transforms(
        {"a": VariableTransform("log1p", 0.5, 2.0), "b": VariableTransform("none", 0.0, 1.0)}
    )
    t.save(tmp_path / "transforms.json")
    assert Transforms.load(tmp_path / "transforms.json") == t
    assert [p.name for p in tmp_path.iterdir()] == ["transforms.json"]


def test_all_nan_in_train(tmp_path):
    ds = make_dataset(nt=40)
    ds["tas"][:20] = np.nan
    ds.to_netcdf(tmp_path / "data.nc")
    with pytest.raises(DataError, match="variable 'tas' is all NaN in the train split"):
        prepare(load_spec(write_spec(tmp_path / "spec.yaml")))


def test_log1p_rejects_values_below_minus_one():
    with pytest.raises(DataError, match="log1p needs > -1"):
        fit_transforms({"v": {"mean": 0, "std": 1, "min": -5, "max": 3}}, {"v": "log1p"})


def test_a_non_negative_log1p_variable_is_bounded_below_at_zero():
    stats = {"mean": 3.0, "std": 2.0, "min": 0.0, "max": 50.0, "log_mean": 1.0, "log_std": 0.5}
    signed = {**stats, "min": -0.5}
    t = fit_transforms(
        {"pr": stats, "tas": stats, "flux": signed},
        {"pr": "log1p", "tas": "standardize", "flux": "log1p"},
    )
    assert [v.lower for v in t.variables.values()] == [0.0, None, None]
    # in normalized space the bound is where zero lands: (log1p(0) - 1) / 0.5
    lower = t.normalized_lower()
    assert lower[0].item() == pytest.approx(-2.0)
    assert lower[1:].tolist() == [-np.inf, -np.inf]
    # the inverse clips below the bound (no negative rainfall), and only there
    z = np.array([-3.0, -2.0, 0.0], dtype=np.float32)
    pr = t.variables["pr"]
    np.testing.assert_allclose(pr.inverse(z), [0.0, 0.0, np.expm1(1.0)], rtol=1e-6)
    assert torch.equal(pr.inverse(torch.from_numpy(z)), torch.from_numpy(pr.inverse(z)))
    # the bound's normalized value (the generator clamps to it, in float32) is exactly zero,
    # also where float32 rounding would give 6e-8 (NYC outflow's fit)
    outflow = VariableTransform("log1p", 1.1689965910880806, 1.4064182948616466, 0.0)
    at_bound = np.float32(outflow.normalized_lower())
    assert outflow.inverse(np.array([at_bound]))[0] == 0
    assert outflow.inverse(torch.tensor([at_bound])).item() == 0
    np.testing.assert_allclose(t.variables["tas"].inverse(z), [-3.0, -1.0, 3.0])


def test_transforms_json_keeps_the_bound_and_reads_files_without_it(tmp_path):
    t = Transforms({"pr": VariableTransform("log1p", 0.5, 2.0, 0.0)})
    t.save(tmp_path / "transforms.json")
    assert Transforms.load(tmp_path / "transforms.json") == t
    older = {"variables": {"pr": {"kind": "log1p", "offset": 0.5, "scale": 2.0}}}
    assert Transforms.from_dict(older).variables["pr"].lower is None
