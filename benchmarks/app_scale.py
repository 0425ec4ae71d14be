"""The app on 100,000 images, in a real browser, against the budgets of the 100,000-image issue.

Made-up data as ``featlib extract`` leaves it: 100,000 vectors of 512 floats (a Gaussian
mixture of 20 classes) in ``features.parquet`` and a 24-pixel PNG per image under ``images/``
(made once, kept in ``--data``). The server is started as a user starts it, ``featlib app
features.parquet --images images/``, with an empty feature store, and Chromium (Debian's, as
in the browser tests) is driven through the steps a person takes; each is timed from the action
to what the person waits for being on screen.

    .venv/bin/python benchmarks/app_scale.py            # 100,000 images
    .venv/bin/python benchmarks/app_scale.py --quick    # 10,000 images
    .venv/bin/python benchmarks/app_scale.py --screenshot docs/app_100k.png

Server memory is the server process's peak resident set (VmHWM).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

from _common import format_table, machine

from tests.system.browser_helpers import (
    box_around,
    browser_page,
    drawn_webgl,
    select_box,
    selected_rows,
    serve,
    settled,
)
from tests.system.feature_sets import write_feature_set

GALLERY_SIZE = 48  # the Projections page's


class _Folders:
    """``tmp_path_factory.mktemp`` for ``serve`` outside pytest."""

    def __init__(self, root: Path):
        self.root = root

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))


def peak_memory_gb(pid: int) -> float:
    """Peak resident memory of a process, in GB (``VmHWM`` in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e6
    raise RuntimeError(f"no VmHWM for process {pid}")


def visit(page, name: str) -> None:
    """Go to a page by its link in the navigation, as a person does (the session is kept)."""
    page.get_by_role("link", name=name, exact=True).first.click()
    heading = "featlib" if name == "Home" else name
    page.wait_for_selector(f"h1:has-text('{heading}')")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 images instead of 100,000")
    parser.add_argument("--data", default=None, help="folder for the made-up set (kept)")
    parser.add_argument("--screenshot", default=None, help="save the Projections page here (PNG)")
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    data = Path(args.data or Path(tempfile.gettempdir()) / f"featlib-app-scale-{n}")
    features, images = data / "features.parquet", data / "images"
    if not features.is_file():
        start = time.perf_counter()
        write_feature_set(data, n)
        print(f"made {n:,} pictures and vectors in {time.perf_counter() - start:.0f} s")
    print(f"# featlib app on {n:,} images of 512-d vectors; {machine()}")
    rows = []

    def row(step: str, seconds: float, budget: str) -> None:
        rows.append([step, f"{seconds:.2f}", budget])
        print(f"  {step}: {seconds:.2f} s", flush=True)

    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        folders = _Folders(Path(scratch))
        start = time.perf_counter()
        server = stack.enter_context(
            serve(folders, app_args=[str(features), "--images", str(images)])
        )
        row("featlib app: the server answers", time.perf_counter() - start, "")
        page = stack.enter_context(browser_page(height=1400, timeout_ms=600_000))
        start = time.perf_counter()
        page.goto(server.url)
        page.get_by_text(f"features.parquet: {n:,} vectors").wait_for()
        settled(page)
        row("Home, first visit: the file opened and shown", time.perf_counter() - start, "< 5")
        start = time.perf_counter()
        page.goto(server.url)
        page.get_by_text(f"features.parquet: {n:,} vectors").wait_for()
        settled(page)
        row("Home in a new session", time.perf_counter() - start, "")

        start = time.perf_counter()
        visit(page, "Projections")
        drawn_webgl(page, n)
        row("Projections: PCA 2-D, first time, drawn", time.perf_counter() - start, "< 10")
        visit(page, "Home")
        start = time.perf_counter()
        visit(page, "Projections")
        drawn_webgl(page, n)
        row("Projections again (cached), drawn", time.perf_counter() - start, "< 5")
        if args.screenshot:
            page.screenshot(path=args.screenshot)

        select_box(page, box_around(page, 17, 1000))
        start = time.perf_counter()
        page.get_by_text("selected", exact=False).first.wait_for()
        settled(page)
        page.locator("[data-testid=stImage] img").nth(GALLERY_SIZE - 1).wait_for()
        chosen = len(selected_rows(page))
        row(f"box of {chosen:,} points to its first gallery page", time.perf_counter() - start,
            "< 2")  # fmt: skip

        start = time.perf_counter()
        visit(page, "Neighbours")
        page.locator("[data-testid=stImage] img").nth(5).wait_for()
        settled(page)
        row("Neighbours page, first (index built)", time.perf_counter() - start, "")
        query = page.get_by_label("Image", exact=True)
        query.fill("class_05/000005.png")
        start = time.perf_counter()
        query.press("Enter")
        page.get_by_text("query: class_05/000005.png").wait_for()
        settled(page)
        row("nearest neighbours of another image", time.perf_counter() - start, "< 1")

        start = time.perf_counter()
        page.goto(f"{server.url}/projections?method=umap")
        drawn_webgl(page, n)
        row("UMAP 2-D, first time, drawn", time.perf_counter() - start, "< 240")
        visit(page, "Home")
        start = time.perf_counter()
        visit(page, "Projections")
        drawn_webgl(page, n)
        row("UMAP again (cached), drawn", time.perf_counter() - start, "< 3")
        memory = peak_memory_gb(server.pid)
    rows.append(["server peak memory (GB)", f"{memory:.2f}", "< 4"])
    print(format_table(rows, ["step", "seconds", "budget (s)"]))


if __name__ == "__main__":
    main()
