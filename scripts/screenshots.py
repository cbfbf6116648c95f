"""Screenshots of the real TensorBoard showing a run, for the README.

    python scripts/screenshots.py LOGDIR OUTDIR

starts ``tensorboard --logdir LOGDIR`` on localhost (a port the system picks), waits
until the run's metric curves and figures are served, photographs the dashboards in
``SHOTS`` with headless Chromium (Debian package ``chromium``) and stops the server by
its process id. The README's pictures come from the full demo run::

    stgan run pipelines/demo.yaml --logdir runs/demo
    python scripts/screenshots.py runs/demo docs/images

It refuses (one line, exit 2), before starting anything, a run whose events record no
stgan version or one older than this code's (``stgan.logging.VERSION_TAG``, written by
every training session): pictures of an old run show old behaviour.

``tensorboard`` (the server helpers) is also what ``tests/test_tensorboard_server.py``
uses to check what the server serves.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version
from PIL import Image
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from stgan import __version__
from stgan.logging import VERSION_TAG

# The line TensorBoard prints once it listens, e.g. "TensorBoard 2.21.0 at http://localhost:6006/ ".
SERVING = re.compile(r"TensorBoard \S+ at (http://\S+?)/? ")


class ServerError(RuntimeError):
    """TensorBoard's server exited before it served anything."""


class RefusedError(Exception):
    """The run or the machine cannot give the README's pictures (one line: why, and the fix)."""


def run_versions(logdir: Path) -> list[str]:
    """The stgan versions recorded (``VERSION_TAG``) in every event file under ``logdir``."""
    tag = f"{VERSION_TAG}/text_summary"  # add_text's suffix
    versions = []
    for path in sorted(logdir.rglob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            versions += [
                v.tensor.string_val[0].decode() for v in event.summary.value if v.tag == tag
            ]
    return versions


def check_run(logdir: Path) -> None:
    """``RefusedError`` unless ``logdir`` is a run written entirely by this stgan version
    (or a newer one): every session of it recorded its version, the oldest counts."""
    if not logdir.is_dir():
        raise RefusedError(f"{logdir} is not a directory; give the run's --logdir")
    versions = run_versions(logdir)
    if not versions:
        raise RefusedError(
            f"{logdir} records no stgan version (not a run, or older than the version record); "
            f"retrain it: stgan run pipelines/demo.yaml --logdir {logdir}"
        )
    oldest = min(versions, key=Version)
    if Version(oldest) < Version(__version__):
        raise RefusedError(
            f"{logdir} was written by stgan {oldest}, older than this code's {__version__}; "
            f"retrain it into a fresh directory: stgan run pipelines/demo.yaml --logdir DIR"
        )


@contextmanager
def tensorboard(logdir: Path, timeout: float = 60.0) -> Iterator[str]:
    """Serve ``logdir`` with TensorBoard on localhost; yields the base URL.

    Parameters
    ----------
    logdir
        The run (or directory of runs) to serve.
    timeout
        Seconds to wait for the server to print its URL.

    Raises
    ------
    ServerError
        The server exited while starting (its output is in the message).
    TimeoutError
        It printed no URL within ``timeout`` seconds.
    """
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
    command += ["--port", "0", "--host", "localhost"]  # a free port, this machine only
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        try:
            yield _serving_url(process, log, timeout)
        finally:
            stop(process)


def _serving_url(process: subprocess.Popen, log, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log.seek(0)
        output = log.read()
        if match := SERVING.search(output):
            return match.group(1)
        if process.poll() is not None:
            raise ServerError(
                f"tensorboard exited with status {process.returncode}: {output.strip()[-800:]}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"tensorboard printed no URL in {timeout:g} s: {output[-800:]}")
        time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    """Stop the server by its process id: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def get_json(url: str, path: str, body: dict | None = None) -> object:
    """GET ``url + path`` (POST ``body`` as JSON when given) and decode the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def served_tags(url: str, plugin: str) -> set[str]:
    """The tags of ``plugin`` (``scalars``, ``images``) over all runs."""
    runs = get_json(url, f"/data/plugin/{plugin}/tags")
    return {tag for tags in runs.values() for tag in tags}


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``ready()`` every half second; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"TensorBoard served no {what} in {timeout:g} s")
        time.sleep(0.5)


@dataclass(frozen=True)
class Shot:
    """One dashboard picture: the URL fragment and the browser window (CSS pixels)."""

    fragment: str
    width: int
    height: int


def _fragment(dashboard: str, **state: str) -> str:
    return "#" + "&".join([dashboard, *(f"{k}={urllib.parse.quote(v)}" for k, v in state.items())])


# The legacy dashboards keep their tag filter and smoothing in the URL fragment;
# smoothing is off because an evaluation curve has only a few points. The Scalars shot
# shows the score's metrics over their floors (``Relative/``, 1 = real-data level), the
# Custom Scalars shot the layout of stgan.logging (training, score, health). 1120 CSS
# pixels wide: the whole sidebar and two columns of cards; the heights end below the
# last row wanted.
METRICS_FILTER = "Relative/[^/]+/(acf_error|lsd_db|wasserstein1)$"  # per variable
SHOTS = {
    "tensorboard_scalars.png": Shot(
        _fragment("scalars", _smoothingWeight="0", tagFilter=METRICS_FILTER), 1120, 1040
    ),
    "tensorboard_custom_scalars.png": Shot(_fragment("custom_scalars"), 1120, 3480),
    "tensorboard_images.png": Shot(_fragment("images", tagFilter="/(acf|psd)$"), 1120, 920),
}
SCALE = 1.4  # device pixels per CSS pixel: figures in the image cards stay sharp
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=20000",  # TensorBoard is a JS app: let it fetch and draw
)


def screenshot(browser: str, url: str, shot: Shot, path: Path) -> None:
    """Photograph ``url + shot.fragment`` with headless Chromium into ``path``."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                *BROWSER_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={shot.width},{shot.height}",
                f"--force-device-scale-factor={SCALE}",
                f"--screenshot={path}",
                url + "/" + shot.fragment,
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    _shrink(path)


def _shrink(path: Path) -> None:
    """Palette PNG: a screenshot of a dashboard has few colours and stays well under 400 KB."""
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=128, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def find_browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    raise RefusedError("no Chromium found; install Debian's package: apt-get install chromium")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path, help="the run to photograph")
    parser.add_argument("outdir", type=Path, help="where the PNG files go")
    parser.add_argument("--only", nargs="*", choices=sorted(SHOTS), help="take these shots only")
    args = parser.parse_args(argv)
    try:
        check_run(args.logdir)
        browser = find_browser()
    except RefusedError as error:
        print(f"screenshots: error: {error}", file=sys.stderr)
        return 2
    args.outdir.mkdir(parents=True, exist_ok=True)
    with tensorboard(args.logdir) as url:
        wait_for(lambda: "Metrics/score" in served_tags(url, "scalars"), "Metrics/score")
        wait_for(lambda: any("/acf" in t for t in served_tags(url, "images")), "ACF figures")
        for name in args.only or SHOTS:
            screenshot(browser, url, SHOTS[name], args.outdir / name)
            print(args.outdir / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
