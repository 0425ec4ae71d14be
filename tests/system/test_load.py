"""Several people on one server: four browser sessions at once, each with its own uploads.

Each session (its own Chromium, so its own cookies and Streamlit session) opens the app on the
same backbone, uploads three pictures of its own and opens the Neighbours page. Each must see
only its own images, the neighbours and scores the library computes in this process from what
the page's URL says it used, and no error; the server must build the backbone once for all four.
Run with ``-s`` to see each session's timings and the server's peak memory.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

import featlib
from tests.system.browser_helpers import encode_png, image_uploader, launch, serve, settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSIONS = 4
IMAGES_EACH = 3
MODEL = {"backbone": "mobilenetv2", "weights": "random", "seed": "0"}  # fast, no weights file
SCORE_TOLERANCE = 0.0005  # half the last of the 3 decimals the Neighbours page shows
NEIGHBOUR = re.compile(r"^\d+\. (\S+) · ([0-9.]+)$")
ERRORS = "[data-testid=stException], [data-testid=stAlertContentError]"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory, "--logger.level", "info") as served:
        yield served


def stripes(seed: int) -> bytes:
    """A 128×96 PNG of coloured stripes; angle, frequency and colour drawn from ``seed``.

    Stripes, unlike noise, keep an untrained network's neighbour scores apart (0.94-0.998
    rather than all 0.998), so the order and the scores shown say something."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:96, 0:128]
    angle, frequency = rng.uniform(0, np.pi), rng.uniform(0.05, 0.5)
    wave = np.sin(frequency * (x * np.cos(angle) + y * np.sin(angle)))
    return encode_png(((wave[..., None] + 1) / 2 * rng.integers(0, 256, 3)).astype(np.uint8))


def captions(page) -> list[str]:
    """The page's image captions as read aloud: without the invisible spaces that let a long
    file name wrap between its words."""
    return [
        t.replace("\u200b", "") for t in page.get_by_test_id("stImageCaption").all_inner_texts()
    ]


def files_of(session: int) -> dict[str, bytes]:
    """The session's uploads by name; names are unique across sessions."""
    return {f"s{session}_{i}.png": stripes(IMAGES_EACH * session + i) for i in range(IMAGES_EACH)}


@dataclass(frozen=True)
class Visit:
    """What one session's pages showed, and when.

    Attributes:
        gallery: the Home gallery's captions after the upload.
        query: the query image's caption on Neighbours.
        neighbours: (name, score) of each neighbour shown, as shown.
        errors: the text of every error or exception element on either page.
        params: the Neighbours page's query parameters (the sidebar's choices and the query).
        seconds: seconds from the common start to ``home``, ``uploaded`` and ``neighbours``.
    """

    gallery: list[str]
    query: str
    neighbours: list[tuple[str, float]]
    errors: list[str]
    params: dict[str, str]
    seconds: dict[str, float]


def visit(url: str, session: int, folder: Path, start_together: threading.Barrier) -> Visit:
    """One person's visit: open Home, upload, open Neighbours."""
    paths = [folder / name for name in files_of(session)]
    for path, data in zip(paths, files_of(session).values(), strict=True):
        path.write_bytes(data)
    with sync_playwright() as p:
        try:
            browser = launch(p)
        except BaseException:
            start_together.abort()  # the others would wait for this session in vain
            raise
        page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
        page.set_default_timeout(300_000)
        seconds = {}
        start_together.wait()
        start = time.perf_counter()
        page.goto(f"{url}/?backbone={MODEL['backbone']}&weights={MODEL['weights']}")
        page.wait_for_selector("h1")
        settled(page)
        seconds["home"] = time.perf_counter() - start
        image_uploader(page).set_input_files(paths)
        page.get_by_text(
            f"Your uploads: {IMAGES_EACH} usable images of {IMAGES_EACH} files"
        ).wait_for()
        settled(page)
        seconds["uploaded"] = time.perf_counter() - start
        gallery = captions(page)
        errors = page.locator(ERRORS).all_inner_texts()
        page.get_by_role("link", name="Neighbours").first.click()
        page.wait_for_selector("h1:has-text('Neighbours')")
        settled(page)
        seconds["neighbours"] = time.perf_counter() - start
        query, *shown = captions(page)
        errors += page.locator(ERRORS).all_inner_texts()
        params = dict(parse_qsl(urlparse(page.url).query))
        browser.close()
    neighbours = [NEIGHBOUR.match(caption) for caption in shown]
    assert all(neighbours), shown
    return Visit(gallery, query, [(m[1], float(m[2])) for m in neighbours], errors, params, seconds)


def library_neighbours(bb: featlib.Backbone, session: int, params: dict[str, str]) -> list:
    """(name, score) of the query's neighbours, computed by featlib here with the choices the
    page's URL names."""
    images = featlib.from_uploads(files_of(session).items())
    layer = params["layer"]
    feats = featlib.extract_set(
        bb, images, layer, pooling=params["pooling"], resize_mode=params["resize"]
    )
    query = feats.names.index(params["query"])
    found, scores = featlib.nearest(feats.features[layer], query, k=int(params["k"]))
    return [(feats.names[i], float(s)) for i, s in zip(found, scores, strict=True)]


def peak_memory_mib(pid: int) -> float:
    """A process's peak resident memory so far (``VmHWM``), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE).group(1)) / 1024


def test_four_sessions_at_once_see_only_their_own_correct_results(server, tmp_path_factory):
    folders = [tmp_path_factory.mktemp(f"session{k}") for k in range(SESSIONS)]
    start_together = threading.Barrier(SESSIONS, timeout=300)
    with ThreadPoolExecutor(SESSIONS) as pool:
        visits = list(
            pool.map(lambda k: visit(server.url, k, folders[k], start_together), range(SESSIONS))
        )
    print(f"\n{SESSIONS} sessions at once; seconds from the common start until drawn:")
    for k, seen in enumerate(visits):
        print(f"  session {k}: " + ", ".join(f"{w} {s:.1f}" for w, s in seen.seconds.items()))
    print(f"  server's peak memory: {peak_memory_mib(server.pid):.0f} MiB")

    assert [{key: v.params[key] for key in MODEL} for v in visits] == [MODEL] * SESSIONS
    bb = featlib.load_backbone(MODEL["backbone"], weights=MODEL["weights"], seed=int(MODEL["seed"]))
    for k, seen in enumerate(visits):
        assert seen.errors == [], f"session {k}"
        assert sorted(seen.gallery) == sorted(files_of(k)), f"session {k}"
        assert seen.query == f"query: {seen.params['query']}"
        assert seen.params["query"] in files_of(k)
        expected = library_neighbours(bb, k, seen.params)
        assert [name for name, _ in seen.neighbours] == [name for name, _ in expected]
        assert [s for _, s in seen.neighbours] == pytest.approx(
            [s for _, s in expected], abs=SCORE_TOLERANCE
        )
    log = server.log.read_text()
    assert "Traceback" not in log
    builds = [line for line in log.splitlines() if f"built backbone {bb.key}" in line]
    assert len(builds) == 1, builds
