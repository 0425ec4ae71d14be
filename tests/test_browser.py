"""A smoke test of the real app in a real browser: Streamlit served in a subprocess, Chromium
driven by Playwright. It navigates, uploads and looks; numbers are the other tests' business.

Needs /usr/bin/chromium (Debian's package; CI installs it): without it the test fails.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCRIPT_STATE = (
    "document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"
)
IDLE = f"() => {SCRIPT_STATE} === 'notRunning'"
RUNNING = f"() => {SCRIPT_STATE} === 'running'"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(tmp_path_factory, *options: str):
    """``streamlit run app.py`` on a free local port, offline, with an empty feature store.

    Yields ``(url, log)``: the server's address and the file its output goes to.
    """
    port = free_port()
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
        yield url, log
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory) as (url, _):
        yield url


@pytest.fixture(scope="module")
def page(server):
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: install Debian's chromium package"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.set_default_timeout(120_000)
        yield page
        browser.close()


def settled(page) -> float:
    """Wait for the rerun an action started (if it has not ended already) to end; return the
    seconds from the call to the end of the run."""
    start = time.perf_counter()
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(RUNNING, timeout=1000, polling=20)
    page.wait_for_function(IDLE, polling=20)
    return time.perf_counter() - start


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label`` by typing to search."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    box.fill(option)
    page.get_by_role("option").filter(has_text=option).first.click()


def png(seed: int) -> bytes:
    y, x = np.mgrid[0:96, 0:128]
    rng = np.random.default_rng(seed)
    pixels = np.stack([x * 2, y * 2, rng.integers(0, 255, x.shape)], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def test_upload_look_project(server, page, tmp_path):
    page.goto(server)
    page.wait_for_selector("h1")
    settled(page)
    files = []
    for i in range(3):
        path = tmp_path / f"upload_{i}.png"
        path.write_bytes(png(i))
        files.append(str(path))
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(files)
    page.get_by_text("Your uploads: 3 files, 3 usable images").wait_for()
    settled(page)
    assert "images=uploads" in page.url

    page.get_by_role("link", name="Feature maps").first.click()
    page.wait_for_selector("h1:has-text('Feature maps')")
    settled(page)
    assert page.get_by_role("combobox", name="Image", exact=True).input_value() == "upload_0.png"
    assert page.locator(".js-plotly-plot").count() == 1

    timings = {}
    for layer in ["block3_conv3", "block4_conv1", "block3_conv3"]:
        choose(page, "Layer", layer)
        key = layer if layer not in timings else f"{layer} (again)"
        timings[key] = settled(page)
        assert layer in page.url
    choose(page, "Image", "upload_1.png")
    timings["image change"] = settled(page)
    print("\nVGG16 offline, feature maps page, seconds until drawn:")
    for what, seconds in timings.items():
        print(f"  {what}: {seconds:.2f}")
    assert page.locator(".js-plotly-plot").count() == 1

    page.get_by_role("link", name="Projections").first.click()
    page.wait_for_selector("h1:has-text('Projections')")
    settled(page)
    points = page.locator(".js-plotly-plot .scatterlayer .point")
    points.first.wait_for()
    assert points.count() == 3
    box = points.first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)  # plotly picks the point it hovers, then the click selects it
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    page.get_by_text("1 selected").wait_for()
    settled(page)
    assert page.get_by_test_id("stImage").count() == 1


def test_a_copied_link_reproduces_the_view(server, page):
    page.goto(f"{server}/feature_maps?layer=block2_pool&image=coffee.png&count=4&colors=gray")
    page.wait_for_selector("h1:has-text('Feature maps')")
    settled(page)
    assert page.get_by_role("combobox", name="Layer").input_value().startswith("block2_pool")
    assert page.get_by_role("combobox", name="Image", exact=True).input_value() == "coffee.png"
    assert page.get_by_role("combobox", name="Colours").input_value() == "gray"
