"""The app on a feature file in a real browser, started as a user starts it: ``featlib app
FEATURES --images ROOT``. 6,000 made-up vectors (above 5,000 the plot is WebGL) with their
pictures: the plot holds every point, hovering a point names its image and shows its picture
beside the cursor, clicking shows its picture and leads to its neighbours, a box of about 150
points fills a paged gallery with exactly those images, a double click clears it, and a click
in the 3-D cloud shows the picture of the point under the mouse.

``benchmarks/app_scale.py`` times the same steps with 100,000 images.

Needs /usr/bin/chromium (Debian's package; CI installs it): without it the test fails.
"""

from __future__ import annotations

import pytest

import featlib
from tests.system.browser_helpers import (
    box_around,
    browser_page,
    drawn_webgl,
    only_local,
    point_at,
    select_box,
    selected_rows,
    serve,
    settled,
)
from tests.system.feature_sets import write_feature_set

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_IMAGES = 6000
GALLERY_SIZE = 48  # the Projections page's
ERRORS = "[data-testid=stException], [data-testid=stAlertContentError]"
# Where a hover label points: the screen position of its point.
_LABEL_POINT = """(label) => {
    const svg = label.ownerSVGElement.getBoundingClientRect();
    const at = label.transform.baseVal.consolidate().matrix;
    return [svg.left + at.e, svg.top + at.f];
}"""
SCATTER_3D = "() => document.querySelector('.js-plotly-plot')?._fullData?.[0]?.type === 'scatter3d'"


@pytest.fixture(scope="module")
def feature_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("set")
    return write_feature_set(folder, N_IMAGES, dim=64, n_classes=8, side=16)


def gallery_names(page) -> list[str]:
    """The captions' file names of the gallery's pictures, in order."""
    captions = page.locator("[data-testid=stImageCaption]").all_inner_texts()
    return [caption.split(" · ")[0].replace("\u200b", "") for caption in captions]


def point_in_3d(page, area: dict) -> str:
    """Put the mouse on a point of a 3-D plot and return the name its hover label shows. The
    mouse walks out from the middle of ``area`` until a label shows, then goes to the point the
    label points at: a 3-D plot takes a click only within a few pixels of the point."""
    label = page.locator(".js-plotly-plot .hovertext")
    cx, cy = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    for step in range(49):
        page.mouse.move(cx + (step % 7 - 3) * 20, cy + (step // 7 - 3) * 20)
        page.wait_for_timeout(150)
        if label.count():
            page.mouse.move(*label.first.evaluate(_LABEL_POINT))
            page.wait_for_timeout(300)
            return label.first.locator("text.nums").text_content().replace("\u200b", "")
    raise AssertionError("no point of the 3-D plot came under the mouse")


def test_a_feature_file_plotted_hovered_clicked_and_selected(tmp_path_factory, feature_file):
    path, root = feature_file
    names = featlib.read_features(path).names
    app_args = [str(path), "--images", str(root)]
    with serve(tmp_path_factory, app_args=app_args) as server, browser_page() as page:
        with only_local(page) as outside:
            page.goto(server.url)
            page.get_by_text("features.parquet: 6,000 vectors of embedding (64-d)").wait_for()
            settled(page)
            page.get_by_role("link", name="Projections").first.click()
            page.wait_for_selector("h1:has-text('Projections')")
            settled(page)
            drawn_webgl(page, N_IMAGES)

            x, y = point_at(page, 17)
            page.mouse.move(x, y)
            page.locator(".hoverlayer .hovertext").filter(has_text=names[17]).wait_for()
            card = page.get_by_test_id("featlib-hover-card")
            card.wait_for()
            assert card.get_attribute("data-row") == "17"
            assert card.inner_text().replace("\u200b", "").startswith(names[17])
            shown = "(img) => img.decode().then(() => [img.naturalWidth, img.width])"
            assert card.locator("img").evaluate(shown) == [16, 160]  # a 16-pixel picture, enlarged
            page.mouse.click(x, y)
            page.get_by_text("1 selected", exact=True).wait_for()
            settled(page)
            assert gallery_names(page) == [names[17]]
            page.get_by_role("button", name="Find its neighbours").click()
            page.wait_for_selector("h1:has-text('Neighbours')")
            page.get_by_text(f"query: {names[17]}").wait_for()
            settled(page)
            page.get_by_role("link", name="Projections").first.click()
            page.wait_for_selector("h1:has-text('Projections')")
            settled(page)
            drawn_webgl(page, N_IMAGES)

            select_box(page, box_around(page, 17, 150))
            page.get_by_text("1 selected", exact=True).wait_for(state="detached")
            settled(page)
            inside = selected_rows(page)
            assert 17 in inside and 150 <= len(inside) < 200  # its edges may take a few more
            assert page.get_by_text(f"{len(inside)} selected", exact=True).is_visible()
            assert gallery_names(page) == [names[i] for i in inside[:GALLERY_SIZE]]
            pages = -(-len(inside) // GALLERY_SIZE)
            page_number = page.get_by_label(f"Page (of {pages}, {GALLERY_SIZE} images each)")
            page_number.fill("2")
            page_number.press("Enter")
            settled(page)
            assert gallery_names(page) == [
                names[i] for i in inside[GALLERY_SIZE : 2 * GALLERY_SIZE]
            ]
            page.mouse.dblclick(*point_at(page, 17))  # clears the box, and its gallery
            page.get_by_text(f"{len(inside)} selected", exact=True).wait_for(state="detached")
            settled(page)
            assert page.get_by_test_id("stImage").count() == 0

            dimensions = page.get_by_role("radiogroup", name="Dimensions")
            dimensions.get_by_text("3").click()  # a 3-D cloud: a click still picks
            settled(page)
            page.wait_for_function(SCATTER_3D, polling=50)
            page.wait_for_timeout(500)  # the scene's first frames
            area = page.locator(".js-plotly-plot .svg-container").first.bounding_box()
            name = point_in_3d(page, area)
            page.mouse.down()  # a 3-D plot tells a click from a turn while the button is down
            page.wait_for_timeout(200)
            page.mouse.up()
            page.get_by_text("1 selected", exact=True).wait_for()
            settled(page)
            assert gallery_names(page) == [name]
            assert page.locator(ERRORS).count() == 0
        assert outside == []
