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
    drag_box,
    drawn_webgl,
    pictures_loaded,
    point_at,
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

    def step(what: str, budget: str, *actions) -> None:
        """Run ``actions`` in turn; the seconds they took together make a row."""
        start = time.perf_counter()
        for action in actions:
            action()
        seconds = time.perf_counter() - start
        rows.append([what, f"{seconds:.2f}", budget])
        print(f"  {what}: {seconds:.2f} s", flush=True)

    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        folders = _Folders(Path(scratch))
        app_args = [str(features), "--images", str(images)]
        servers = []
        step(
            "featlib app: the server answers",
            "",
            lambda: servers.append(stack.enter_context(serve(folders, app_args=app_args))),
        )
        server = servers[0]
        page = stack.enter_context(browser_page(height=1400, timeout_ms=600_000))
        home = (
            lambda: page.goto(server.url),
            lambda: page.get_by_text(f"features.parquet: {n:,} vectors").wait_for(),
            lambda: settled(page),
        )
        step("Home, first visit: the file opened and shown", "< 5", *home)
        step("Home in a new session", "", *home)
        projections = (lambda: visit(page, "Projections"), lambda: drawn_webgl(page, n))
        step("Projections: PCA 2-D, first time, drawn", "< 10", *projections)
        visit(page, "Home")
        step("Projections again (cached), drawn", "< 5", *projections)
        if args.screenshot:
            page.screenshot(path=args.screenshot)

        x, y = point_at(page, 17)
        page.mouse.move(x - 5, y - 5)
        step(
            "a point hovered to its picture beside the cursor",
            "",
            lambda: page.mouse.move(x, y),
            lambda: page.locator("[data-testid=featlib-hover-card][data-row='17']").wait_for(),
        )
        page.mouse.move(5, 5)
        # 1,000 points of 100,000 (the lasso); 100 of 10,000, a box that stays in the plot
        drag_box(page, box_around(page, 17, n // 100))
        step(
            "a box of about 1% of the points to its first gallery page",
            "< 2",
            lambda: page.mouse.up(),
            lambda: page.get_by_text("selected", exact=False).first.wait_for(),
            lambda: pictures_loaded(page, GALLERY_SIZE),
        )
        rows[-1][0] = f"a box of {len(selected_rows(page)):,} points to its first gallery page"

        step(
            "Neighbours page, first (index built)",
            "",
            lambda: visit(page, "Neighbours"),
            lambda: page.locator("[data-testid=stImage] img").nth(5).wait_for(),
            lambda: settled(page),
        )
        query = page.get_by_label("Image", exact=True)
        query.fill("class_05/000005.png")
        step(
            "nearest neighbours of another image",
            "< 1",
            lambda: query.press("Enter"),
            lambda: page.get_by_text("query: class_05/000005.png").wait_for(),
            lambda: settled(page),
        )

        step(
            "UMAP 2-D, first time, drawn",
            "< 240",
            lambda: page.goto(f"{server.url}/projections?method=umap"),
            lambda: drawn_webgl(page, n),
        )
        visit(page, "Home")
        step("UMAP again (cached), drawn", "< 3", *projections)
        memory = peak_memory_gb(server.pid)
    rows.append(["server peak memory (GB)", f"{memory:.2f}", "< 4"])
    print(format_table(rows, ["step", "seconds", "budget (s)"]))


if __name__ == "__main__":
    main()
