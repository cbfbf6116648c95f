import copy
import math

import pytest
from matplotlib.figure import Figure
from torch.utils.tensorboard import SummaryWriter

from stgan.metrics.registry import headline
from stgan.metrics.tensorboard import log_report, png_pixels, report_scalars

from .conftest import assert_report_logged, small_report

METRICS = (
    "acf_error", "lsd_db", "wasserstein1", "ks", "increment_w1", "energy", "mmd2", "c2st",
    "precision", "recall", "density", "coverage",
)  # fmt: skip


@pytest.fixture(scope="module")
def report() -> dict:
    return small_report(("u", "v"), seed=7)


def test_scalars_name_every_metric_of_every_variable_and_the_floor(report):
    scalars = report_scalars(report)
    expected = {
        f"{group}/{name}/{metric}"
        for group in ("Metrics", "Floor")
        for name in ("u", "v")
        for metric in METRICS
    }
    relative = {
        f"Relative/{name}/{metric}"
        for name in ("u", "v")
        for metric in METRICS
        if headline(report["floor"][name])[metric] > 0
    }
    assert relative  # floors above 0 get the metric over the floor
    assert set(scalars) == expected | relative | {
        "Metrics/cross_correlation/error",
        "Metrics/score",
    }
    floor_u = headline(report["floor"]["u"])["acf_error"]
    acf_u = report["variables"]["u"]["acf"]["error"]
    assert scalars["Relative/u/acf_error"] == pytest.approx(acf_u / floor_u)
    assert scalars["Metrics/score"] == report["score"]
    u, floor_v = report["variables"]["u"], report["floor"]["v"]
    assert scalars["Metrics/u/acf_error"] == u["acf"]["error"]
    assert scalars["Metrics/u/lsd_db"] == u["psd"]["lsd_db"]
    assert scalars["Metrics/u/ks"] == u["ks"] and scalars["Metrics/u/coverage"] == u["coverage"]
    assert scalars["Floor/v/c2st"] == floor_v["c2st"]
    error = report["cross_correlation"]["mean_abs_diff"]
    assert scalars["Metrics/cross_correlation/error"] == error
    assert report_scalars(report, prefix="Eval")["Eval/v/mmd2"] == report["variables"]["v"]["mmd2"]


def test_non_finite_and_missing_values_are_left_out(report):
    changed = copy.deepcopy(report)
    changed["variables"]["u"]["ks"] = math.nan
    changed["variables"]["u"]["psd"]["lsd_db"] = math.inf
    changed["cross_correlation"]["mean_abs_diff"] = None  # a single variable
    del changed["floor"]
    scalars = report_scalars(changed)
    assert "Metrics/u/ks" not in scalars and "Metrics/u/lsd_db" not in scalars
    assert "Metrics/cross_correlation/error" not in scalars
    assert not any(tag.startswith("Floor/") for tag in scalars)
    assert scalars["Metrics/v/ks"] == report["variables"]["v"]["ks"]


def test_log_report_writes_scalars_and_figures(report, tmp_path):
    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot(report["variables"]["u"]["acf"]["real"])
    writer = SummaryWriter(log_dir=str(tmp_path))
    log_report(writer, report, step=3, figures={"u/acf": figure})
    writer.close()

    events = assert_report_logged(tmp_path, report, step=3)
    assert events.Tags()["images"] == ["Figures/u/acf"]


def test_a_figure_drawn_once_logs_the_same_image_as_the_figure(report, tmp_path):
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from stgan.figures import DPI, rendered

    def figure() -> Figure:
        made = Figure(figsize=(2, 2), dpi=DPI)
        made.add_subplot().plot(report["variables"]["u"]["acf"]["real"])
        return made

    for name, logged in (("figure", figure()), ("png", rendered({"f": figure()})["f"])):
        writer = SummaryWriter(log_dir=str(tmp_path / name))
        log_report(writer, report, step=3, figures={"u/acf": logged})
        writer.close()
    images = []
    for name in ("figure", "png"):
        events = EventAccumulator(str(tmp_path / name), size_guidance={"images": 0}).Reload()
        (image,) = events.Images("Figures/u/acf")
        assert image.step == 3
        images.append(png_pixels(image.encoded_image_string))
    assert images[0].shape == images[1].shape == (200, 200, 4)
    assert np.array_equal(images[0], images[1])
