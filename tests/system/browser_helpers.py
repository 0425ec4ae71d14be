"""What the browser tests share: a Streamlit server in a subprocess, Chromium, waiting for a
rerun to end or a chart to be drawn, picking in a select box, and pictures to upload.

Needs /usr/bin/chromium (Debian's package; CI installs it): without it the tests fail.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

__all__ = [
    "CHROMIUM", "Server", "box_around", "browser_page", "choose", "drag_box", "drawn",
    "drawn_webgl", "encode_png", "image_uploader", "launch", "only_local", "pictures_loaded", "png",
    "point_at", "select_box", "selected_rows", "serve", "settled",
]  # fmt: skip

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
_SCRIPT_STATE = (
    "document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"
)
_IDLE = f"() => {_SCRIPT_STATE} === 'notRunning'"
_RUNNING = f"() => {_SCRIPT_STATE} === 'running'"
_PLOT_SHOWS = """([points, legend]) => {
    const count = document.querySelectorAll('.js-plotly-plot .scatterlayer .point').length;
    const names = [...document.querySelectorAll('.js-plotly-plot .legend .legendtext')]
        .map((entry) => entry.textContent);
    return count === points && (legend === null || names.join('\\n') === legend.join('\\n'));
}"""
_WEBGL_SHOWS = """(points) => {
    const plot = document.querySelector('.js-plotly-plot');
    if (!plot || !plot._fullData || !plot.querySelector('.gl-container canvas')) return false;
    return plot._fullData.reduce((sum, trace) => sum + trace.x.length, 0) === points;
}"""
# Screen positions of every point of the first plot, with its row (customdata).
_POSITIONS = """() => {
    const plot = document.querySelector('.js-plotly-plot');
    const area = plot.querySelector('.nsewdrag').getBoundingClientRect();
    const xa = plot._fullLayout.xaxis, ya = plot._fullLayout.yaxis;
    const out = [];
    for (const trace of plot._fullData) {
        for (let k = 0; k < trace.x.length; k++) {
            out.push([trace.customdata[k], area.left + xa.l2p(trace.x[k]),
                      area.top + ya.l2p(trace.y[k])]);
        }
    }
    return out;
}"""
_SELECTED = """() => {
    const plot = document.querySelector('.js-plotly-plot');
    return plot._fullData.flatMap((trace) =>
        Array.from(trace.selectedpoints || [], (k) => trace.customdata[k]));
}"""
_LOADED = """(count) => {
    const pictures = [...document.querySelectorAll('[data-testid=stImage] img')].slice(0, count);
    return pictures.length === count && pictures.every((p) => p.complete && p.naturalWidth > 0);
}"""
_PAINTED = "() => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)))"


@dataclass(frozen=True)
class Server:
    """A running ``streamlit run app.py``.

    Attributes:
        url: its address, ``http://127.0.0.1:<port>``.
        log: the file its standard output and error go to.
        pid: its process id.
    """

    url: str
    log: Path
    pid: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(tmp_path_factory, *options: str, app_args: list[str] | None = None, store=None):
    """``streamlit run app.py`` on a free local port, offline, with an empty feature store.

    Args:
        tmp_path_factory: pytest's (or anything with its ``mktemp``), for the store and the log.
        *options: more command-line options, e.g. ``"--logger.level", "info"``.
        app_args: start the server as a user does with ``featlib app`` instead, with these
            arguments (``[FEATURES, "--images", ROOT]``); ``options`` are then not used.
        store: the feature store's folder, to share one between servers; a new one when None.

    Yields:
        a ``Server``; it is stopped on exit.
    """
    port = _free_port()
    env = {
        **os.environ,
        "FEATLIB_OFFLINE": "1",
        "FEATLIB_CACHE_DIR": str(store or tmp_path_factory.mktemp("store")),
    }
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
        "--server.port", str(port), "--server.fileWatcherType", "none", "--server.headless", "true",
        *options,
    ]  # fmt: skip
    if app_args is not None:
        command = [sys.executable, "-m", "featlib", "app", *app_args, "--port", str(port)]
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"streamlit did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
    try:
        yield Server(url, log, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)


def launch(playwright):
    """Debian's headless Chromium, started by ``playwright`` (one ``sync_playwright()``)."""
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: install Debian's chromium package"
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)


@contextlib.contextmanager
def browser_page(height: int = 2000, timeout_ms: int = 120_000):
    """A page of a fresh Chromium, 1400 pixels wide (Streamlit scrolls inside its main block:
    a tall page shows more), whose waits give up after ``timeout_ms``."""
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": height})
        page.set_default_timeout(timeout_ms)
        yield page
        browser.close()


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


@contextlib.contextmanager
def only_local(page):
    """Let ``page`` reach this machine only: every request to another host is aborted (so an
    offline test never waits on it), and its URL appended to the list this yields.

    Example::

        with only_local(page) as outside:
            page.goto(server)
        assert outside == []
    """
    outside = []

    def local(url: str) -> bool:
        host = urllib.parse.urlparse(url).hostname
        return url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS

    def handle(route) -> None:
        if local(route.request.url):
            route.continue_()
        else:
            route.abort()

    def seen(request) -> None:  # every request, also those no route sees (a page's icon)
        if not local(request.url):
            outside.append(request.url)

    page.route("**/*", handle)
    page.on("request", seen)
    try:
        yield outside
    finally:
        page.remove_listener("request", seen)
        page.unroute("**/*", handle)


def settled(page) -> float:
    """Wait for the rerun an action started (if it has not ended already) to end; return the
    seconds from the call to the end of the run."""
    start = time.perf_counter()
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(_RUNNING, timeout=1000, polling=20)
    page.wait_for_function(_IDLE, polling=20)
    return time.perf_counter() - start


def drawn(page, points: int, legend: list[str] | None = None) -> float:
    """Wait until the page's plotly charts show ``points`` markers in all (and, when ``legend``
    is given, exactly these legend entries, in order) and the browser has painted them; return
    the seconds from the call.

    ``settled`` says when the script ended; this says when the picture is on screen, which is
    what a person waits for (plotly draws in the browser, after the figure arrives). Markers are
    counted in SVG (``go.Scatter``); a WebGL chart (``go.Scattergl``) draws none. The legend
    tells a redraw from the figure it replaces when the point count stays the same.

    Example::

        page.get_by_text("k-means cluster").click()
        seconds = drawn(page, 2000, legend=["cluster 0", "cluster 1"])
    """
    start = time.perf_counter()
    page.wait_for_function(_PLOT_SHOWS, arg=[points, legend], polling=20)
    page.evaluate(_PAINTED)
    return time.perf_counter() - start


def image_uploader(page):
    """Home's uploader of images and ZIPs (the first of its two: the other takes feature
    files), for ``set_input_files``."""
    return page.get_by_test_id("stFileUploaderDropzoneInput").first


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label`` by typing to search."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    box.fill(option)
    page.get_by_role("option").filter(has_text=option).first.click()


def encode_png(pixels: np.ndarray) -> bytes:
    """The PNG file of a uint8 array of shape (height, width, 3)."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def png(seed: int) -> bytes:
    """A 128×96 PNG: red and green gradients, blue noise drawn from ``seed``."""
    y, x = np.mgrid[0:96, 0:128]
    rng = np.random.default_rng(seed)
    return encode_png(np.stack([x * 2, y * 2, rng.integers(0, 255, x.shape)], -1).astype(np.uint8))


def drawn_webgl(page, points: int) -> float:
    """``drawn`` for a WebGL chart (``go.Scattergl``, used above 5,000 points): wait until the
    first plot holds ``points`` points on its canvas and the browser has painted; return the
    seconds from the call."""
    start = time.perf_counter()
    page.wait_for_function(_WEBGL_SHOWS, arg=points, polling=50)
    page.evaluate(_PAINTED)
    return time.perf_counter() - start


def point_at(page, row: int) -> tuple[float, float]:
    """Where on the screen the first plot draws the point of ``row`` (its customdata)."""
    for r, x, y in page.evaluate(_POSITIONS):
        if r == row:
            return x, y
    raise AssertionError(f"row {row} is not plotted")


def box_around(page, row: int, count: int) -> tuple[float, float, float, float]:
    """The smallest screen square centred on the point of ``row`` that holds ``count`` points,
    as ``(left, top, right, bottom)``; ``selected_rows`` says which points plotly took."""
    positions = page.evaluate(_POSITIONS)
    cx, cy = point_at(page, row)
    reach = sorted(max(abs(x - cx), abs(y - cy)) for _, x, y in positions)[count - 1] + 0.5
    return cx - reach, cy - reach, cx + reach, cy + reach


def selected_rows(page) -> list[int]:
    """The rows (customdata) of the points plotly shows as selected in the first plot."""
    return sorted(page.evaluate(_SELECTED))


def drag_box(page, corners: tuple[float, float, float, float]) -> None:
    """Drag a box selection on the first plot with the mouse (its "Box Select" tool), up to
    the release of the button: ``page.mouse.up()`` ends it."""
    left, top, right, bottom = corners
    page.hover(".js-plotly-plot")
    page.locator(".js-plotly-plot .modebar-btn[data-val=select]").first.click()
    page.mouse.move(left, top)
    page.mouse.down()
    page.mouse.move((left + right) / 2, (top + bottom) / 2, steps=5)
    page.mouse.move(right, bottom, steps=5)


def select_box(page, corners: tuple[float, float, float, float]) -> None:
    """Draw a box selection on the first plot with the mouse (its "Box Select" tool)."""
    drag_box(page, corners)
    page.mouse.up()


def pictures_loaded(page, count: int) -> float:
    """Wait until the page's first ``count`` ``st.image`` pictures are loaded and painted;
    return the seconds from the call."""
    start = time.perf_counter()
    page.wait_for_function(_LOADED, arg=count, polling=20)
    page.evaluate(_PAINTED)
    return time.perf_counter() - start
