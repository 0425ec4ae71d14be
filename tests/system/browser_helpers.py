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
    "CHROMIUM", "Server", "browser_page", "choose", "drawn", "encode_png", "launch", "only_local",
    "png", "serve", "settled",
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
def serve(tmp_path_factory, *options: str):
    """``streamlit run app.py`` on a free local port, offline, with an empty feature store.

    Args:
        tmp_path_factory: pytest's, for the store and the log.
        *options: more command-line options, e.g. ``"--logger.level", "info"``.

    Yields:
        a ``Server``; it is stopped on exit.
    """
    port = _free_port()
    env = {
        **os.environ,
        "FEATLIB_OFFLINE": "1",
        "FEATLIB_CACHE_DIR": str(tmp_path_factory.mktemp("store")),
    }
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
        "--server.port", str(port), "--server.fileWatcherType", "none", "--server.headless", "true",
        *options,
    ]  # fmt: skip
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
