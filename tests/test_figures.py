import warnings

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from stgan import figures
from stgan.errors import DataError
from stgan.metrics import evaluate_arrays
from tests.metrics.conftest import space_time

UNITS = {"tas": "K", "pr": "mm h-1"}
SHAPE = (6, 8, 5, 7)  # (sample, time, y, x): an odd grid, L = max(y, x) = 7


@pytest.fixture(scope="module")
def data():
    """AR(1)-in-time, red-in-space real fields against white noise, a NaN cell and column."""
    rng = np.random.default_rng(7)
    real = {"tas": 280 + space_time(rng, SHAPE, phi=0.8, beta=2.0), "pr": space_time(rng, SHAPE)}
    synthetic = {name: 280 * (name == "tas") + rng.standard_normal(SHAPE) for name in real}
    for arrays in (real, synthetic):
        arrays["tas"][:, :, 1, 2] = np.nan
        arrays["tas"][:, :, :, 4] = np.nan  # a whole column: its Hovmöller mean is NaN
    return real, synthetic, evaluate_arrays(real, synthetic)


@pytest.fixture(scope="module")
def all_figures(data):
    real, synthetic, report = data
    return figures.evaluation_figures(report, real, synthetic, UNITS)


def lines(ax, label):
    return [line for line in ax.get_lines() if line.get_label() == label]


def images(fig):
    return [image for ax in fig.axes for image in ax.get_images()]


def all_labels(fig):
    texts = [fig.get_suptitle()]
    for ax in fig.axes:
        texts += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
    return " | ".join(texts)


def test_every_variable_gets_every_kind_titled_with_its_name(all_figures):
    assert set(all_figures) == {f"{v}/{k}" for v in ("tas", "pr") for k in figures.KINDS}
    for key, fig in all_figures.items():
        assert isinstance(fig, Figure)
        assert fig.get_suptitle().startswith(key.split("/")[0] + ":")


def test_acf_lines_are_the_report_curves_and_error_is_in_the_title(data, all_figures):
    acf = data[2]["variables"]["tas"]["acf"]
    fig = all_figures["tas/acf"]
    (ax,) = fig.axes
    assert acf["real"][1] > acf["synthetic"][1] + 0.3  # AR(1) against white noise
    assert len(ax.get_lines()) == 2
    for side in ("real", "synthetic"):
        (line,) = lines(ax, side)
        np.testing.assert_array_equal(line.get_xdata(), acf["lags"])
        np.testing.assert_array_equal(line.get_ydata(), acf[side])
    assert f"{acf['error']:.3g}" in fig.get_suptitle()
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"real", "synthetic"}


def test_psd_is_log_log_against_the_rapsd_wavenumbers(data, all_figures):
    psd = data[2]["variables"]["tas"]["psd"]
    fig = all_figures["tas/psd"]
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    # pysteps rapsd: frequencies fftfreq(L)[:rings]; ring 0 (the mean) is not on a log axis
    wavenumber = np.fft.fftfreq(max(SHAPE[-2:]))[1 : len(psd["real"])]
    for side in ("real", "synthetic"):
        (line,) = lines(ax, side)
        np.testing.assert_allclose(line.get_xdata(), wavenumber)
        np.testing.assert_allclose(line.get_ydata(), psd[side][1:])
    assert f"{psd['lsd_db']:.3g} dB" in fig.get_suptitle()
    assert "K²" in ax.get_ylabel()
    assert "(mm h-1)²" in all_figures["pr/psd"].axes[0].get_ylabel()


def test_axis_labels_carry_the_units(all_figures):
    for kind in ("distribution", "frames", "hovmoller"):
        assert "(K)" in all_labels(all_figures[f"tas/{kind}"])
        assert "(mm h-1)" in all_labels(all_figures[f"pr/{kind}"])
    hist_ax, qq_ax = all_figures["tas/distribution"].axes
    assert hist_ax.get_xlabel() == "tas (K)"
    assert "(K)" in qq_ax.get_xlabel() and "(K)" in qq_ax.get_ylabel()


def test_distribution_has_log_histograms_and_qq_points_of_the_data(data, all_figures):
    real, synthetic, report = data
    fig = all_figures["tas/distribution"]
    hist_ax, qq_ax = fig.axes
    assert hist_ax.get_yscale() == "log"
    assert {t.get_text() for t in hist_ax.get_legend().get_texts()} == {"real", "synthetic"}
    (points,) = lines(qq_ax, "quantiles")
    np.testing.assert_allclose(points.get_xdata(), np.nanquantile(real["tas"], figures.QQ_LEVELS))
    np.testing.assert_allclose(
        points.get_ydata(), np.nanquantile(synthetic["tas"], figures.QQ_LEVELS)
    )
    (identity,) = lines(qq_ax, "1:1")
    np.testing.assert_array_equal(identity.get_xdata(), identity.get_ydata())
    scores = report["variables"]["tas"]
    assert f"{scores['wasserstein1']:.3g}" in fig.get_suptitle()
    assert f"{scores['ks']:.3g}" in fig.get_suptitle()


def test_distribution_subsamples_reproducibly(monkeypatch, data):
    real, synthetic, _ = data
    monkeypatch.setattr(figures, "MAX_VALUES", 50)
    first, second = (
        figures.distribution_figure("tas", real["tas"], synthetic["tas"]) for _ in range(2)
    )
    qq = [lines(fig.axes[1], "quantiles")[0].get_xdata() for fig in (first, second)]
    np.testing.assert_array_equal(qq[0], qq[1])
    assert not np.allclose(qq[0], np.nanquantile(real["tas"], figures.QQ_LEVELS))


def test_frames_share_one_colour_scale_and_mask_nan(data, all_figures):
    real, synthetic, _ = data
    fig = all_figures["tas/frames"]
    shown = images(fig)
    assert len(shown) == 2 * 4  # real row and synthetic row, 4 of the 8 steps
    steps = [0, 2, 5, 7]
    both = np.concatenate([real["tas"][0, steps], synthetic["tas"][0, steps]])
    assert {image.get_clim() for image in shown} == {(np.nanmin(both), np.nanmax(both))}
    for image in shown:
        assert image.get_array().mask[1, 2] and image.get_array().mask[:, 4].all()
    np.testing.assert_array_equal(shown[4].get_array().filled(0)[0], np.nan_to_num(both[4, 0]))
    assert "(K)" in fig.axes[-1].get_ylabel()  # the colour bar


def test_hovmoller_shows_the_y_mean_of_sample_zero_side_by_side(data, all_figures):
    real, synthetic, _ = data
    fig = all_figures["tas/hovmoller"]
    shown = images(fig)
    assert len(shown) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN column: mean of nothing
        diagrams = [np.nanmean(x["tas"][0], axis=1) for x in (real, synthetic)]  # (T, X)
    for image, diagram in zip(shown, diagrams):
        np.testing.assert_allclose(image.get_array().filled(np.nan), diagram)
    assert shown[0].get_clim() == shown[1].get_clim() == (np.nanmin(diagrams), np.nanmax(diagrams))


def test_one_sample_of_two_steps_on_an_odd_grid_renders_without_warnings():
    rng = np.random.default_rng(3)
    shape = (6, 2, 3, 9)  # (sample, time, y, x)
    real = {"tas": 280 + space_time(rng, shape, phi=0.7, beta=1.0)}
    synthetic = {"tas": 280 + rng.standard_normal(shape)}
    report = evaluate_arrays(real, synthetic)
    real, synthetic = ({"tas": x["tas"][:1]} for x in (real, synthetic))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        made = figures.evaluation_figures(report, real, synthetic, UNITS)
        for fig in made.values():
            fig.draw_without_rendering()
    assert len(images(made["tas/frames"])) == 2 * 2
    assert len(lines(made["tas/psd"].axes[0], "real")[0].get_xdata()) == 9 // 2


def test_a_constant_variable_gets_a_readable_colour_scale():
    constant = np.full((2, 4, 6, 6), 5.0)
    constant[:, :, 0, 0] = np.nan
    zero_power = {"real": [180.0, 0.0, 0.0], "synthetic": [180.0, 0.0, 0.0], "lsd_db": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        made = [
            figures.frames_figure("c", constant, constant, "K"),
            figures.hovmoller_figure("c", constant, constant, "K"),
            figures.distribution_figure("c", constant, constant, None, "K"),
            figures.psd_figure("c", zero_power, constant.shape[-2:], "K"),
        ]
        for fig in made:
            fig.draw_without_rendering()
    for fig in made[:2]:
        low, high = images(fig)[0].get_clim()
        assert low < 5.0 < high


def test_infinite_values_are_left_out_of_the_histograms_and_colour_scales():
    field = np.random.default_rng(0).standard_normal((2, 4, 6, 6))
    blown = field.copy()
    blown[0, 0, 0, 0], blown[1, 1, 1, 1] = np.inf, -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        distribution = figures.distribution_figure("v", field, blown)
        frames = figures.frames_figure("v", field, blown)
        for fig in (distribution, frames):
            fig.draw_without_rendering()
    low, high = images(frames)[0].get_clim()
    assert np.isfinite([low, high]).all() and high == field[0].max()


def test_no_valid_value_or_missing_variable_is_a_data_error(data):
    real, synthetic, report = data
    with pytest.raises(DataError, match="no valid"):
        figures.distribution_figure("tas", real["tas"], np.full(SHAPE, np.nan))
    with pytest.raises(DataError, match="'pr'.*synthetic"):
        figures.evaluation_figures(report, real, {"tas": synthetic["tas"]})


def test_save_figures_writes_readable_pngs_atomically(data, tmp_path):
    real, synthetic, report = data
    made = {
        "tas/acf": figures.acf_figure("tas", report["variables"]["tas"]["acf"]),
        "tas/frames": figures.frames_figure("tas", real["tas"], synthetic["tas"], "K"),
    }
    directory = tmp_path / "new" / "figs"
    paths = figures.save_figures(made, directory)
    assert paths == [directory / "tas_acf.png", directory / "tas_frames.png"]
    for path, fig in zip(paths, made.values()):
        assert path.stat().st_size > 0
        width, height = fig.get_size_inches() * fig.dpi
        assert matplotlib.image.imread(path).shape[:2] == (round(height), round(width))
    assert sorted(p.name for p in directory.iterdir()) == ["tas_acf.png", "tas_frames.png"]


def test_figures_need_no_pyplot_and_log_to_tensorboard(data, tmp_path):
    import matplotlib.pyplot as plt
    from torch.utils.tensorboard import SummaryWriter

    acf = data[2]["variables"]["tas"]["acf"]
    fig = figures.acf_figure("tas", acf)
    assert plt.get_fignums() == []
    with SummaryWriter(tmp_path) as writer:
        writer.add_figure("tas/acf", fig, global_step=1)
    (events,) = tmp_path.glob("events.out.tfevents*")
    assert b"tas/acf" in events.read_bytes()
