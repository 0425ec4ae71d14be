"""The app with 2,000 images: how long the Projections page takes to run once vectors are cached.

Streamlit's AppTest runs the real pages in this process (no browser): a ZIP of 2,000 small
pictures in 5 class folders is uploaded, the Projections page extracts MobileNetV2 vectors once,
and then each change is timed as one script run on the server (plotly's drawing in the browser
comes on top).

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/app_projections.py
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import zipfile

import numpy as np
from _common import ROOT
from PIL import Image
from streamlit.testing.v1 import AppTest

from ui import state


def timed_run(what: str, action) -> None:
    start = time.perf_counter()
    at = action()
    print(f"{what}: {time.perf_counter() - start:.2f} s")
    if at.exception:
        raise SystemExit(f"the page failed: {at.exception}")


def main() -> None:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(2000):
            picture = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(picture, "PNG")
            zf.writestr(f"c{i % 5}/{i}.png", picture.getvalue())
    print("# app: 2,000 uploaded images, MobileNetV2 random weights, server-side run times")
    with tempfile.TemporaryDirectory() as store:
        os.environ["FEATLIB_CACHE_DIR"] = store
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=900)
        at.query_params.update({"backbone": "mobilenetv2", "weights": "random"})
        at.run()
        zipped = ("set.zip", buf.getvalue(), "application/zip")
        at.file_uploader(key=state.UPLOADS).set_value(zipped).run()
        page = "app_pages/projections.py"
        timed_run("Projections, first (extract 2,000 + PCA)", lambda: at.switch_page(page).run())
        for colour in ("cluster", "label"):
            radio = at.radio(key=state.COLOR_BY)
            timed_run(f"colour by {colour}", lambda: radio.set_value(colour).run())  # noqa: B023
        timed_run("3-D PCA", lambda: at.radio(key=state.DIMS).set_value(3).run())
        timed_run("Neighbours page", lambda: at.switch_page("app_pages/neighbours.py").run())
        timed_run("back to Projections", lambda: at.switch_page(page).run())


if __name__ == "__main__":
    main()
