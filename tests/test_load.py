"""Several people on one server: four browser sessions at once, each with its own uploads.

Each session uploads three pictures of its own and opens the Neighbours page on the same
backbone. Each must see only its own images, the same neighbour scores as the library computes
in this process, and no error; the server must build the backbone once for all four.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import sync_playwright

import featlib
from tests.test_browser import CHROMIUM, png, serve, settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSIONS = 4
BACKBONE = {"backbone": "mobilenetv2", "weights": "random"}  # seed 0: the same in every process
CAPTION = re.compile(r"^(\d+)\. (\S+) · ([0-9.]+)$")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory, "--logger.level", "info") as served:
        yield served


def files_of(session: int) -> dict[str, bytes]:
    return {f"s{session}_{i}.png": png(10 * session + i) for i in range(3)}


def visit(url: str, session: int, folder) -> dict:
    """One person's visit; returns what the pages showed and how long it took."""
    paths = []
    for name, data in files_of(session).items():
        path = folder / name
        path.write_bytes(data)
        paths.append(str(path))
    start = time.perf_counter()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
        page.set_default_timeout(300_000)
        page.goto(f"{url}/?backbone={BACKBONE['backbone']}&weights={BACKBONE['weights']}")
        page.wait_for_selector("h1")
        settled(page)
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(paths)
        page.get_by_text("Your uploads: 3 files, 3 usable images").wait_for()
        settled(page)
        home_text = page.locator("[data-testid=stMain]").inner_text()
        page.get_by_role("link", name="Neighbours").first.click()
        page.wait_for_selector("h1:has-text('Neighbours')")
        settled(page)
        captions = page.get_by_test_id("stImageCaption").all_inner_texts()
        errors = page.locator("[data-testid=stException], [data-testid=stAlertContentError]")
        shown = {
            "home": home_text,
            "captions": captions,
            "errors": errors.all_inner_texts(),
            "layer": parse_qs(urlparse(page.url).query)["layer"][0],
            "seconds": time.perf_counter() - start,
        }
        browser.close()
    return shown


def library_neighbours(session: int, layer: str) -> list[tuple[str, str]]:
    """(name, score to 3 decimals) of the query's neighbours, computed by featlib here."""
    images = featlib.from_uploads(files_of(session).items())
    bb = featlib.load_backbone(BACKBONE["backbone"], weights=BACKBONE["weights"], seed=0)
    x = featlib.extract_set(bb, images, layer).features[layer]
    found, scores = featlib.nearest(x, 0, k=2)
    return [(images.ok[i].name, f"{s:.3f}") for i, s in zip(found, scores, strict=True)]


def test_four_sessions_at_once_see_only_their_own_correct_results(server, tmp_path_factory):
    url, log = server
    folders = [tmp_path_factory.mktemp(f"session{k}") for k in range(SESSIONS)]
    with ThreadPoolExecutor(SESSIONS) as pool:
        visits = list(pool.map(lambda k: visit(url, k, folders[k]), range(SESSIONS)))
    print(f"\n{SESSIONS} sessions at once, seconds from opening to neighbours shown:")
    for k, shown in enumerate(visits):
        print(f"  session {k}: {shown['seconds']:.1f}")
        assert shown["errors"] == []
        others = [n for j in range(SESSIONS) if j != k for n in files_of(j)]
        assert all(name in shown["home"] for name in files_of(k))
        assert not any(name in shown["home"] for name in others)
        neighbours = [CAPTION.match(c) for c in shown["captions"] if CAPTION.match(c)]
        got = [(m.group(2), m.group(3)) for m in neighbours]
        assert got == library_neighbours(k, shown["layer"])
    builds = [line for line in log.read_text().splitlines() if "built backbone" in line]
    assert len(builds) == 1, builds
