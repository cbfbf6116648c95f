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
