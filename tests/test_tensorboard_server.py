"""TensorBoard as a user sees it: the real server, asked over its HTTP data API.

A tiny pipeline trains for two steps with one evaluation, then ``tensorboard --logdir
RUN --port 0 --host localhost`` serves it; every answer is checked against the event
file read directly, so the test holds whatever the numbers are.
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from contextlib import ExitStack

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2

from scripts.screenshots import ServerError, get_json, served_tags, tensorboard, wait_for
from stgan.training.config import load_pipeline
from stgan.training.loop import train
from tests.conftest import tiny_pipeline

pytestmark = pytest.mark.slow  # training plus a server start: ~20 s on two busy cores

FAMILIES = ("Loss/", "Grad/", "LR/", "Metrics/", "Health/")
STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tensorboard")
    path = tiny_pipeline(directory, eval={"every": 2, "samples": 6}, train={"steps": 2})
    return load_pipeline(path)


@pytest.fixture(scope="module")
def logdir(config, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("run")
    train(config, logdir, device="cpu")
    return logdir


@pytest.fixture(scope="module")
def events(logdir):
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


@pytest.fixture(scope="module")
def url(logdir, events):
    """The server's base URL once it serves every scalar and image tag of the run."""
    with ExitStack() as stack:  # on leaving: the server stopped by its process id
        try:
            url = stack.enter_context(tensorboard(logdir))
        except ServerError as error:
            pytest.skip(f"TensorBoard's server cannot start here: {error}")
        scalars, images = set(events.Tags()["scalars"]), set(events.Tags()["images"])
        wait_for(lambda: served_tags(url, "scalars") >= scalars, "scalar tags")
        wait_for(lambda: served_tags(url, "images") >= images, "image tags")
        yield url


def _query(path: str, **params: str) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}"


def test_the_run_and_its_dashboards_are_listed(url):
    assert get_json(url, "/data/runs") == ["."]  # the logdir is the run itself
    plugins = get_json(url, "/data/plugins_listing")
    for plugin in ("scalars", "images", "custom_scalars", "hparams"):
        assert plugins[plugin]["enabled"], plugin


def test_every_scalar_tag_is_served(url, events):
    served = served_tags(url, "scalars")
    assert served == set(events.Tags()["scalars"])
    for family in FAMILIES:
        assert any(tag.startswith(family) for tag in served), family


@pytest.mark.parametrize("tag", ["Metrics/score", "Loss/G", "Grad/D_norm", "LR/G"])
def test_scalar_values_are_the_logged_ones(url, events, tag):
    served = get_json(url, _query("/data/plugin/scalars/scalars", run=".", tag=tag))
    logged = events.Scalars(tag)
    assert [step for _, step, _ in served] == [e.step for e in logged]
    assert [value for _, _, value in served] == pytest.approx([e.value for e in logged])


@pytest.mark.parametrize("kind", ["acf", "psd"])
def test_figures_are_served_as_the_logged_pngs(url, events, config, kind):
    assert served_tags(url, "images") == set(events.Tags()["images"])
    for variable in config.spec.variable_names:
        tag = f"Figures/{variable}/{kind}"
        served = get_json(url, _query("/data/plugin/images/images", run=".", tag=tag))
        logged = events.Images(tag)
        assert [image["step"] for image in served] == [e.step for e in logged]
        image_url = f"{url}/data/plugin/images/individualImage?{served[-1]['query']}"
        with urllib.request.urlopen(image_url, timeout=30) as response:
            png = response.read()
        assert png.startswith(PNG)
        assert png == logged[-1].encoded_image_string


def _charts(categories) -> set[tuple[str, str, tuple[str, ...]]]:
    return {
        (category["title"], chart["title"], tuple(chart["multiline"]["tag"]))
        for category in categories
        for chart in category["chart"]
    }


def test_custom_scalars_layout_is_the_logged_one(url, events, config):
    proto = events.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
    logged = layout_pb2.Layout.FromString(proto)
    served = get_json(url, "/data/plugin/custom_scalars/layout")["category"]
    assert _charts(served) == {
        (category.title, chart.title, tuple(chart.multiline.tag))
        for category in logged.category
        for chart in category.chart
    }
    titles = {category["title"] for category in served}
    for v in config.spec.variable_names:  # each variable's metrics over their floors
        assert any(title.startswith(f"Metrics {v} ") and "floor" in title for title in titles)
    scalars = served_tags(url, "scalars")
    for _, chart, patterns in _charts(served):  # a chart's tags are regular expressions
        matched = [tag for tag in scalars if any(re.search(p, tag) for p in patterns)]
        assert len(matched) == 1, (chart, matched)  # one series: no chart waits, none mixes


def test_hparams_session_holds_the_settings_and_final_metrics(url, events, config):
    experiment = get_json(url, "/data/plugin/hparams/experiment", {"experimentName": ""})
    metric_tags = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"Metrics/score", "Loss/G", "Loss/D"} <= metric_tags
    assert {f"Metrics/{v}/recall" for v in config.spec.variable_names} <= metric_tags
    request = {"experimentName": "", "allowedStatuses": STATUSES, "startIndex": 0, "sliceSize": 10}
    groups = get_json(url, "/data/plugin/hparams/session_groups", request)["sessionGroups"]
    assert len(groups) == 1
    group = groups[0]
    assert group["hparams"]["generator"] == config.model.generator.name
    assert group["hparams"]["loss"] == config.loss.name
    assert group["hparams"]["lr_d"] == pytest.approx(config.optim.lr_d)
    [session] = group["sessions"]
    assert session["status"] == "STATUS_SUCCESS"  # the session end was written
    metrics = {m["name"]["tag"]: m for m in session["metricValues"]}
    assert metrics.keys() == metric_tags
    final = events.Scalars("Metrics/score")[-1]
    assert metrics["Metrics/score"]["value"] == pytest.approx(final.value)
    assert metrics["Metrics/score"]["trainingStep"] == final.step == config.train.steps
