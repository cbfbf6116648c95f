import shutil

import numpy as np
import pytest
import torch
import xarray as xr

from stgan import __version__
from stgan.data import prepare
from stgan.data.cf import describe_grid, write_netcdf
from stgan.data.transforms import Transforms
from stgan.errors import CheckpointError, DataError, SpecError
from stgan.models import build_generator
from stgan.sampling import check_samples, draw_latents, generate, load_trained, sample_seed
from stgan.training.checkpoint import load_checkpoint, save_checkpoint
from stgan.training.config import load_pipeline, resolved_dict
from tests.conftest import make_dataset, tiny_pipeline

NAN_CELL = (0, 0)  # missing at every step in tiny_pipeline's data


def make_checkpoint(
    directory,
    metadata=True,
    calendar="standard",
    step=1,
    init_seed=0,
    generator=None,
    state_changes=None,
):
    """A run directory with one checkpoint of an untrained generator, as `stgan train` writes.

    ``metadata`` adds the "grid" and "transforms" entries; without it the run holds
    transforms.json instead (older checkpoints).
    """
    directory.mkdir(parents=True, exist_ok=True)
    sections = {"model": {"generator": generator}} if generator else {}
    path = tiny_pipeline(directory, **sections)
    data_file = directory / "data.nc"
    dataset = make_dataset(
        nt=40, ny=8, nx=8, variables=("tas", "pr"), nan_cells=(NAN_CELL,), calendar=calendar
    )
    dataset["tas"][3, 2, 5] = np.nan  # missing once only: not in the static mask
    dataset.to_netcdf(data_file)
    config = load_pipeline(path)
    data = prepare(config.spec)
    gcfg = config.model.generator
    length = config.spec.window.length
    frames = length - gcfg.context_frames if gcfg.conditional else length
    torch.manual_seed(init_seed)
    g = build_generator(gcfg, 2, 8, 8, frames)
    state = {"version": __version__, "config": resolved_dict(config), "EMA": g.state_dict()}
    run = directory / "run"
    if metadata:
        state["grid"] = describe_grid(data.source, config.spec.patch)
        state["transforms"] = data.transforms.to_dict()
    else:
        run.mkdir(exist_ok=True)
        data.transforms.save(run / "transforms.json")
    state.update(state_changes or {})
    return save_checkpoint(run / "checkpoints", step, state, keep=10)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("gen"))


def expected_physical(checkpoint, num, seed, frames=None, context=None):
    """What generate should return, from the public pieces: EMA weights, latents, inverse."""
    trained = load_trained(checkpoint, torch.device("cpu"))
    g = trained.generator
    frames = frames or g.frames
    z, noise = draw_latents(g, frames, [sample_seed(seed, i) for i in range(num)])
    with torch.no_grad():
        x = g(z, noise, None if context is None else context.expand(num, -1, -1, -1, -1))
    return trained.transforms.inverse(x, channel_axis=2).numpy()  # (N, T, C, H, W)


def test_checkpoint_metadata_loads_with_weights_only(checkpoint):
    state = torch.load(checkpoint, weights_only=True)
    fitted = prepare(load_pipeline(checkpoint.parents[2] / "pipeline.yaml").spec).transforms
    assert Transforms.from_dict(state["transforms"]) == fitted
    assert state["grid"]["variables"].keys() == fitted.variables.keys()


def test_samples_in_physical_units_on_the_training_grid(checkpoint):
    ds = generate(checkpoint, 5, seed=3, batch_size=2, progress=False)
    data = xr.open_dataset(checkpoint.parent.parent.parent / "data.nc")
    assert dict(ds.sizes) == {"sample": 5, "time": 4, "lat": 8, "lon": 8}
    assert ds.tas.dims == ("sample", "time", "lat", "lon")
    np.testing.assert_array_equal(ds.lat.values, data.lat.values)
    np.testing.assert_array_equal(ds.lon.values, data.lon.values)
    assert ds.tas.attrs["units"] == data.tas.attrs["units"]
    np.testing.assert_array_equal(ds.time.values, data.time.values[:4])
    expected = expected_physical(checkpoint, 5, seed=3)
    expected[:, :, :, NAN_CELL[0], NAN_CELL[1]] = np.nan
    got = np.stack([ds.tas.values, ds.pr.values], axis=2)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_static_mask_is_nan_and_only_there(checkpoint):
    ds = generate(checkpoint, 3, progress=False)
    missing = ds.tas.isnull().all(("sample", "time")).values
    expected = np.zeros((8, 8), bool)
    expected[NAN_CELL] = True  # (2, 5) is missing once in the data: not static
    np.testing.assert_array_equal(missing, expected)
    assert ds.tas.isnull().sum() == 3 * 4


def test_seeded_and_independent_of_batch_size(checkpoint):
    a = generate(checkpoint, 5, seed=7, batch_size=2, progress=False)
    b = generate(checkpoint, 5, seed=7, batch_size=5, progress=False)
    c = generate(checkpoint, 5, seed=8, batch_size=5, progress=False)
    # the same latents per sample; convolutions over another batch size may round otherwise
    xr.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert a.attrs == b.attrs
    assert not np.allclose(a.tas.values[:, :, 1:], c.tas.values[:, :, 1:])


def test_fallback_without_metadata_matches_self_contained(tmp_path):
    with_meta = make_checkpoint(tmp_path / "a")
    without = make_checkpoint(tmp_path / "b", metadata=False)
    assert "grid" not in load_checkpoint(without)
    a = generate(with_meta, 3, seed=1, progress=False)
    b = generate(without, 3, seed=1, progress=False)
    for name in ("tas", "pr", "time", "lat", "lon"):
        xr.testing.assert_identical(a[name], b[name])


def test_fallback_without_data_is_one_line(tmp_path):
    path = make_checkpoint(tmp_path, metadata=False)
    (tmp_path / "data.nc").unlink()
    with pytest.raises(CheckpointError, match="lacks grid metadata") as info:
        generate(path, 1, progress=False)
    assert "\n" not in str(info.value)
    (tmp_path / "run" / "transforms.json").unlink()
    with pytest.raises(CheckpointError, match="lacks"):
        generate(path, 1, progress=False)


def test_self_contained_checkpoint_needs_no_data(tmp_path):
    path = make_checkpoint(tmp_path)
    before = generate(path, 2, progress=False)
    (tmp_path / "data.nc").unlink()
    xr.testing.assert_identical(generate(path, 2, progress=False), before)


def test_run_directory_prefers_best_then_newest(tmp_path):
    make_checkpoint(tmp_path, step=1, init_seed=0)
    newest = make_checkpoint(tmp_path, step=2, init_seed=1)
    run = tmp_path / "run"
    assert generate(run, 1, progress=False).attrs["stgan_checkpoint"] == str(newest)
    best = run / "checkpoints" / "best.pt"
    shutil.copy(run / "checkpoints" / "ckpt_00000001.pt", best)
    ds = generate(run, 1, progress=False)
    assert ds.attrs["stgan_checkpoint"] == str(best)
    xr.testing.assert_equal(ds.tas, generate(best, 1, progress=False).tas)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        generate(tmp_path / "empty", 1)


def test_noleap_calendar_survives_the_file(tmp_path):
    path = make_checkpoint(tmp_path, calendar="noleap")
    ds = generate(path, 2, length=6, progress=False)
    write_netcdf(ds, tmp_path / "syn.nc")
    cftime_times = xr.coders.CFDatetimeCoder(use_cftime=True)
    back = xr.open_dataset(tmp_path / "syn.nc", decode_times=cftime_times)
    source = xr.open_dataset(tmp_path / "data.nc", decode_times=cftime_times)
    assert back.time.encoding["calendar"] == "noleap"
    assert back.indexes["time"].calendar == "noleap"
    assert list(back.indexes["time"]) == list(source.indexes["time"][:6])
    assert back.tas.dims == ("sample", "time", "lat", "lon")
    assert back.tas.attrs["units"] == "K" and back.lat.attrs["units"] == "degrees_north"


def test_recurrent_generators_make_longer_sequences(checkpoint):
    ds = generate(checkpoint, 2, length=9, seed=2, progress=False)
    assert ds.sizes["time"] == 9
    np.testing.assert_allclose(
        ds.tas.values[:, :, 1:], expected_physical(checkpoint, 2, 2, frames=9)[:, :, 0, 1:]
    )
    steps = np.diff(ds.time.values)
    assert (steps == steps[0]).all() and steps[0] == np.timedelta64(1, "h")


def test_conv3d_cannot_change_length(tmp_path):
    conv3d = {"name": "conv3d", "temporal_up_stages": 1, "num_layers": 1}
    path = make_checkpoint(tmp_path, generator=conv3d)
    assert generate(path, 1, progress=False).sizes["time"] == 4
    with pytest.raises(SpecError, match="conv3d generator .* makes exactly 4 steps"):
        generate(path, 1, length=8, progress=False)


@pytest.fixture(scope="module")
def nowcaster(tmp_path_factory):
    return make_checkpoint(
        tmp_path_factory.mktemp("now"), generator={"conditional": True, "context_frames": 2}
    )


def test_nowcasting_continues_after_the_context(nowcaster):
    data = xr.open_dataset(nowcaster.parents[2] / "data.nc").load()
    past = data.isel(time=slice(10, 15))
    ds = generate(nowcaster, 3, seed=4, context=past, progress=False)
    assert ds.sizes["time"] == 2  # window 4 minus 2 context frames
    np.testing.assert_array_equal(ds.time.values, data.time.values[15:17])
    trained = load_trained(nowcaster, torch.device("cpu"))
    physical = np.stack([past.tas.values[-2:], past.pr.values[-2:]], axis=1)
    z, _ = trained.transforms.forward(physical, channel_axis=1)
    expected = expected_physical(nowcaster, 3, 4, context=torch.from_numpy(z)[None])
    np.testing.assert_allclose(ds.tas.values[:, :, 1:], expected[:, :, 0, 1:], rtol=1e-5)
    other = generate(nowcaster, 3, seed=4, context=data.isel(time=slice(0, 5)), progress=False)
    assert not np.array_equal(other.tas.values[:, :, 1:], ds.tas.values[:, :, 1:])


def test_context_on_a_larger_grid_is_cut_to_the_training_grid(nowcaster, tmp_path):
    data = xr.open_dataset(nowcaster.parents[2] / "data.nc").load().isel(time=slice(0, 6))
    wider = xr.concat([data, data.assign_coords(lon=data.lon + 8)], "lon")
    wider.to_netcdf(tmp_path / "wide.nc")
    a = generate(nowcaster, 2, context=tmp_path / "wide.nc", progress=False)
    b = generate(nowcaster, 2, context=data, progress=False)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


@pytest.mark.parametrize(
    ("context", "error", "message"),
    [
        (None, SpecError, "conditional .* pass --context"),
        (lambda d: d.isel(lon=slice(1, None)), DataError, r"its grid \(lat 8 points.*lon 7 points"),
        (lambda d: d.rename(lat="y"), DataError, "has no dim lat"),
        (lambda d: d.isel(time=[0]), DataError, "has 1 time steps; .* needs the last 2"),
        (lambda d: d.isel(time=[0, 2]), DataError, "not 3600 s apart"),
        (lambda d: d[["tas"]], DataError, r"needs variables \['tas', 'pr'\]"),
    ],
)
def test_bad_context_is_one_line(nowcaster, context, error, message):
    data = xr.open_dataset(nowcaster.parents[2] / "data.nc").load()
    with pytest.raises(error, match=message) as info:
        generate(nowcaster, 1, context=None if context is None else context(data), progress=False)
    assert "\n" not in str(info.value)


def test_unconditional_refuses_context(checkpoint):
    with pytest.raises(SpecError, match="unconditional generator, which takes no context"):
        generate(checkpoint, 1, context=xr.Dataset(), progress=False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": "9.0.0"}, "written by stgan 9.0.0, which is incompatible"),
        ({"version": "0.99.0"}, "written by stgan 0.99.0, which is incompatible"),
        ({"EMA": {}}, 'EMA weights do not fit .*Missing key.*"noise_strength"'),
        ({"grid": {"format": 99}}, "grid metadata format 99 is not 1"),
        ({"grid": None, "transforms": {"variables": {"tas": {"kind": "x"}}}}, "malformed"),
    ],
)
def test_incompatible_checkpoints_are_one_line(tmp_path, changes, message):
    path = make_checkpoint(tmp_path, state_changes=changes)
    with pytest.raises(CheckpointError, match=message) as info:
        generate(path, 1, progress=False)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("name", "unet", "its config does not validate .*'unet' is not allowed"),
        ("latent_dim", 8, "EMA weights do not fit .*size mismatch for z_proj.weight"),
    ],
)
def test_config_that_does_not_fit_is_one_line(tmp_path, key, value, message):
    path = make_checkpoint(tmp_path)
    state = load_checkpoint(path)
    state["config"]["model"]["generator"][key] = value
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=message):
        generate(path, 1, progress=False)


def _with_output_bias(path, tas=0.0, pr=0.0):
    """The checkpoint at ``path`` with the generator's last bias (normalized tas, pr) raised."""
    state = load_checkpoint(path)
    state["EMA"]["decoder.net.2.bias"] += torch.tensor([tas, pr])
    torch.save(state, path)
    return path


@pytest.mark.parametrize("variable", ["tas", "pr"])
def test_samples_far_outside_the_training_range_are_refused(tmp_path, variable):
    # 1e4 train standard deviations out: finite, but from weights that blew up
    path = _with_output_bias(make_checkpoint(tmp_path), **{variable: 1e4})
    with pytest.raises(CheckpointError, match=rf"produces {variable} of magnitude up to") as info:
        generate(path, 3, progress=False)
    message = str(info.value)
    assert "1e+04 standard deviations" in message and "limit 100" in message
    assert "\n" not in message and "earlier ckpt_*.pt or best.pt" in message


def test_nonfinite_samples_are_refused_but_not_the_static_mask(checkpoint):
    trained = load_trained(checkpoint, torch.device("cpu"))
    values = expected_physical(checkpoint, 2, seed=0)  # (N, T, C, H, W)
    values[:, :, :, NAN_CELL[0], NAN_CELL[1]] = np.nan  # the static mask, as generate sets it
    check_samples(trained, values)
    values[1, 2, 1, 4, 4] = np.inf  # of 2 x 4 x 2 x 63 values off the static mask
    with pytest.raises(CheckpointError, match=r"non-finite values \(1 of 1008 in pr; training"):
        check_samples(trained, values)


def test_samples_within_the_limit_are_not_refused(tmp_path):
    path = _with_output_bias(make_checkpoint(tmp_path), tas=50.0)  # a bad G, not a blown-up one
    ds = generate(path, 3, progress=False)
    assert np.isfinite(ds.tas.values[:, :, 1:]).all()


def test_a_generator_with_nonfinite_weights_is_refused(tmp_path):
    path = make_checkpoint(tmp_path)
    state = load_checkpoint(path)
    state["EMA"]["stem.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="its EMA generator holds NaN/Inf weights"):
        generate(path, 1, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"num": 0}, "--num 0"), ({"num": 1, "length": 0}, "--length 0")]
)
def test_counts_must_be_positive(checkpoint, kwargs, message):
    with pytest.raises(SpecError, match=f"{message}: must be >= 1"):
        generate(checkpoint, progress=False, **kwargs)


def test_output_passes_the_cf_checker(checkpoint, tmp_path):
    runner = pytest.importorskip(
        "compliance_checker.runner", reason="compliance-checker (dev extra) is not installed"
    )
    write_netcdf(generate(checkpoint, 2, progress=False), tmp_path / "syn.nc")
    suite = runner.CheckSuite()
    suite.load_all_available_checkers()
    results = suite.run_all(suite.load_dataset(str(tmp_path / "syn.nc")), ["cf:1.8"], [])
    groups, errors = results["cf:1.8"]
    assert not errors
    failed = [
        (r.name, r.msgs)
        for r in groups
        if r.weight == 3
        and (r.value is False or (isinstance(r.value, tuple) and r.value[0] < r.value[1]))
    ]
    assert failed == []
    assert len(groups) > 10  # the checker really ran the CF checks


def test_written_file_reads_back(checkpoint, tmp_path):
    ds = generate(checkpoint, 2, progress=False)
    write_netcdf(ds, tmp_path / "syn.nc", command="stgan generate x")
    back = xr.open_dataset(tmp_path / "syn.nc")
    xr.testing.assert_allclose(back.tas, ds.tas)
    assert back.tas.encoding["dtype"] == np.float32 and back.tas.encoding["zlib"]
    assert back.attrs["Conventions"] == "CF-1.8"
    assert back.attrs["stgan_version"] == __version__
    assert back.attrs["history"].endswith(": stgan generate x")
    assert "generator:" in back.attrs["stgan_config"]
    assert back.time.encoding["dtype"] == np.int32
