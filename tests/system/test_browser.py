"""A smoke test of the real app in a real browser: Streamlit served in a subprocess, Chromium
driven by Playwright. It navigates, uploads and looks; numbers are the other tests' business.

Needs /usr/bin/chromium (Debian's package; CI installs it): without it the test fails.
"""

from __future__ import annotations

import pytest

from tests.system.browser_helpers import (
    browser_page,
    choose,
    image_uploader,
    only_local,
    png,
    settled,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = ["", "feature_maps", "projections", "neighbours", "checks", "teaching", "model"]
FAILED = "[data-testid=stException], [data-testid=stAlertContentError]"
CONTENT = "[data-testid=stImage], .js-plotly-plot, [data-testid=stDataFrame], [data-testid=stTable]"


@pytest.fixture(scope="module")
def page(server):
    with browser_page() as page:
        yield page


def test_upload_look_project(server, page, tmp_path):
    page.goto(server)
    page.wait_for_selector("h1")
    settled(page)
    files = []
    for i in range(3):
        path = tmp_path / f"upload_{i}.png"
        path.write_bytes(png(i))
        files.append(str(path))
    image_uploader(page).set_input_files(files)
    page.get_by_text("Your uploads: 3 usable images of 3 files").wait_for()
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


def test_the_upload_chips_x_forgets_the_uploads(server, page, tmp_path):
    page.goto(server)
    page.wait_for_selector("h1")
    settled(page)
    path = tmp_path / "only.png"
    path.write_bytes(png(0))
    image_uploader(page).set_input_files([str(path)])
    page.get_by_text("Your uploads: 1 usable image of 1 file").wait_for()
    settled(page)
    page.get_by_test_id("stFileChipDeleteBtn").first.click()  # the chip's ×
    page.get_by_text("Sample photos: 10 scikit-image pictures").wait_for()
    settled(page)
    assert "images=photos" in page.url
    assert page.get_by_text("Your uploads").count() == 0


def test_every_page_on_its_defaults_with_no_request_leaving_this_machine(server, page):
    """Each page opened by its URL, nothing chosen: sample photos, vgg16, weights auto."""
    with only_local(page) as outside:
        for path in PAGES:
            page.goto(f"{server}/{path}?")  # the query string of the tests before is dropped
            page.wait_for_selector("h1")
            if path == "teaching":  # nothing is computed before its button is pressed
                page.get_by_role("button", name="Run the sweep").wait_for()
            else:
                page.locator(CONTENT).first.wait_for()
            settled(page)
            failed = page.locator(FAILED)
            assert failed.count() == 0, f"/{path}: {failed.first.inner_text()}"
            assert "HED" in page.get_by_test_id("stSidebar").inner_text(), path
    assert outside == []
