"""The Projections page with 2,000 images, in a real browser: how long until the plot is drawn.

One ZIP of 2,000 small pictures in 5 class folders is uploaded; the first visit to Projections
extracts their MobileNetV2 vectors (random weights: fast, no weights file). With the vectors
cached, coming back to the page and changing the colouring are timed until plotly has drawn
all 2,000 points in the browser, which is what a person waits for (``benchmarks/
app_projections.py`` times the same steps on the server only). Run with ``-s`` to see the
seconds; they are printed, not asserted: the test checks what is drawn.

Needs /usr/bin/chromium (Debian's package; CI installs it): without it the test fails.
"""

from __future__ import annotations

import io
import time
import zipfile

import numpy as np
import pytest

from tests.system.browser_helpers import browser_page, drawn, encode_png, image_uploader, settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_IMAGES = 2000
SIDE = 32
CLASSES = ["blue_checks", "green_bars", "grey_noise", "red_stripes", "yellow_disc"]  # legend order
CLUSTERS = [f"cluster {i}" for i in range(4)]  # the page's default k-means
MODEL = "backbone=mobilenetv2&weights=random"
ERRORS = "[data-testid=stException], [data-testid=stAlertContentError]"


def picture(label: str, rng: np.random.Generator) -> np.ndarray:
    """A SIDE×SIDE uint8 RGB picture for ``label``: a pattern and a colour of its own, shifted
    and noisy, so that each class is a cloud and the classes lie apart."""
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    period, shift = rng.integers(4, 9), rng.integers(0, 8)
    shape, colour = {
        "blue_checks": (((x + shift) // period + (y + shift) // period) % 2 == 0, (40, 70, 230)),
        "green_bars": ((x + shift) % period < period / 2, (40, 200, 60)),
        "grey_noise": (rng.random((SIDE, SIDE)) < 0.5, (150, 150, 150)),
        "red_stripes": ((y + shift) % period < period / 2, (220, 40, 40)),
        "yellow_disc": (
            (x - 12 - shift) ** 2 + (y - 16) ** 2 < rng.uniform(6, 14) ** 2,
            (230, 210, 40),
        ),
    }[label]
    pixels = shape[..., None] * np.array(colour) + rng.normal(0, 20, (SIDE, SIDE, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def class_zip(path) -> None:
    """Write a ZIP of N_IMAGES PNGs, in turn from each class, under one folder per class."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(N_IMAGES):
            label = CLASSES[i % len(CLASSES)]
            zf.writestr(f"{label}/{i:04d}.png", encode_png(picture(label, rng)))
    path.write_bytes(buf.getvalue())


def until_drawn(page, action, legend: list[str]) -> float:
    """Seconds from ``action()`` until the N_IMAGES points are drawn under ``legend``."""
    start = time.perf_counter()
    action()
    drawn(page, N_IMAGES, legend=legend)
    return time.perf_counter() - start


def points_per_trace(page) -> list[int]:
    return page.locator(".js-plotly-plot .scatterlayer .trace").evaluate_all(
        "(traces) => traces.map((t) => t.querySelectorAll('.point').length)"
    )


@pytest.fixture(scope="module")
def page(server):
    with browser_page(height=1400, timeout_ms=300_000) as page:
        yield page


def test_projections_of_2000_images_draw(server, page, tmp_path):
    archive = tmp_path / "classes.zip"
    class_zip(archive)
    page.goto(f"{server}/?{MODEL}")
    page.wait_for_selector("h1")
    settled(page)
    image_uploader(page).set_input_files(str(archive))
    page.get_by_text(f"Your uploads: {N_IMAGES:,} usable images of {N_IMAGES:,} files").wait_for()
    settled(page)
    assert "images=uploads" in page.url

    projections = page.get_by_role("link", name="Projections").first
    first = until_drawn(page, projections.click, CLASSES)
    settled(page)
    assert points_per_trace(page) == [N_IMAGES // len(CLASSES)] * len(CLASSES)
    page.screenshot(path=tmp_path / "projections_2000.png")

    timings = {}
    for round_ in (1, 2):
        page.get_by_role("link", name="Home").first.click()
        page.wait_for_selector("h1:has-text('what does the network see')")
        settled(page)
        assert page.locator(".js-plotly-plot").count() == 0

        timings[f"back to Projections ({round_})"] = until_drawn(page, projections.click, CLASSES)
        settled(page)

        colour_by = page.get_by_role("radiogroup", name="Colour by")
        for option, legend in [("k-means cluster", CLUSTERS), ("label", CLASSES)]:
            radio = colour_by.get_by_text(option, exact=True)
            timings[f"colour by {option} ({round_})"] = until_drawn(page, radio.click, legend)
            settled(page)
            assert f"color={'cluster' if legend is CLUSTERS else 'label'}" in page.url
        assert sum(points_per_trace(page)) == N_IMAGES

    print(f"\nProjections of {N_IMAGES} uploaded images, MobileNetV2 random weights, browser:")
    print(f"  first visit (extracts the vectors): {first:.1f} s")
    print("  with the vectors cached, seconds until the 2,000 points are drawn:")
    for what, seconds in timings.items():
        print(f"    {what}: {seconds:.2f}")
    print(f"  screenshot: {tmp_path / 'projections_2000.png'}")
    assert page.locator(ERRORS).count() == 0
    for part in ("images=uploads", "backbone=mobilenetv2", "weights=random", "color=label"):
        assert part in page.url
