"""Teaching page: the layer sweep, a new channel in the explorer, and opening the page, each the
way it ran before issue 17 beside the way it runs now, in one process.

- sweep: VGG16 (offline weights) and the same network with random weights on the faces sample,
  every block. Before: ``layer_sweep`` at 224 px in float32 without an extractor. Now: at the
  size the app sweeps a set of small images (``featlib.teaching.sweep.sweep_input_size``: 64 px
  for the 64 x 64 faces), every block out of one forward pass with the app's extractor
  (``precision="auto"``, tuned once beforehand and timed apart), into a cold feature store;
  beside it the same at 224 px; then the small sweep again from the store.
- channel: a channel not seen before at ``block4_pool``. Before: ``top_activations``, which ran
  the whole set through the layer for each channel. Now: ``channel_hits`` on the layer's scan
  (scanned once per set and layer, timed apart).
- page: opening Teaching on faces with VGG16 already loaded (by the Home page, timed apart).
  Before, ``st.tabs`` ran all three views on every run: the sum of the three views opened one
  at a time; now only the open view runs.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/teaching.py          # 200 faces
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/teaching.py --quick  # 64 faces
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import ROOT, format_table, machine, timed

import featlib
from featlib.extraction.tuning import tuned_settings
from featlib.teaching import channels
from featlib.teaching.sweep import sweep_input_size

LAYER = "block4_pool"


def sweep_rows(backbones, faces, cache: Path) -> list[list[str]]:
    def before():
        for bb in backbones:
            featlib.layer_sweep(bb, faces, store=featlib.FeatureStore(cache / "before"))

    side, _ = sweep_input_size(backbones[0], faces)
    small = [
        featlib.load_backbone(bb.name, weights=bb.weights, input_size=(side, side))
        for bb in backbones
    ]
    tuning = timed(lambda: [tuned_settings(bb) for bb in backbones + small])

    def app_sweep(nets, folder: str):
        extractors = []
        for bb in nets:
            blocks = [i.name for i in featlib.block_outputs(bb)]
            extractors.append(featlib.Extractor(bb, blocks, pooling="avg", precision="auto"))
        store = featlib.FeatureStore(cache / folder)

        def run():
            for bb, ex in zip(nets, extractors, strict=True):
                featlib.layer_sweep(bb, faces, ex.layers, store=store, extractor=ex)

        return run, extractors[0].precision

    at_224, precision = app_sweep(backbones, "at-224")
    at_side, _ = app_sweep(small, "at-side")
    old, full, new, stored = timed(before), timed(at_224), timed(at_side), timed(at_side)
    return [
        ["sweep, trained + random", f"{old:.1f}", f"{new:.1f}", f"{old / new:.1f}x",
         f"at {side} px (the faces' size) in {precision}; at 224 px in {precision}: {full:.1f} s "
         f"({full / new:.1f}x the {side} px sweep); tuning once per machine {tuning:.1f} s"],
        ["sweep again (store)", f"{old:.1f}", f"{stored:.1f}", f"{old / stored:.0f}x",
         "the vectors from the feature store"],
    ]  # fmt: skip


def channel_rows(bb, faces) -> list[list[str]]:
    old = min(timed(lambda c=c: channels.top_activations(bb, faces, LAYER, c)) for c in (3, 4))
    ex = featlib.Extractor(bb, LAYER, pooling=None, precision="auto")
    start = time.perf_counter()
    scan = channels.scan_layer(bb, faces, LAYER, extractor=ex)
    scan_s = time.perf_counter() - start
    new = max(
        timed(lambda c=c: channels.channel_hits(scan, c, faces, extractor=ex)) for c in (5, 6, 7)
    )
    return [
        ["new channel", f"{old:.1f}", f"{new:.3f}", f"{old / new:.0f}x",
         f"scan of {LAYER} once per set: {scan_s:.1f} s"],
    ]  # fmt: skip


def page_rows(n_faces: int) -> list[list[str]]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    def open_teaching(view: str) -> float:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.query_params.update(images="faces", teach=view)
        at.run()
        seconds = timed(lambda: at.switch_page("app_pages/teaching.py").run())
        if at.exception:
            raise RuntimeError(at.exception)
        return seconds

    st.cache_data.clear()
    home = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    home.query_params.update(images="faces")
    load = timed(home.run)
    views = {view: open_teaching(view) for view in ("sweep", "channel", "cam")}
    return [
        ["open Teaching", f"{sum(views.values()):.1f}", f"{views['sweep']:.1f}",
         f"{sum(views.values()) / views['sweep']:.0f}x",
         f"Home first (loads VGG16): {load:.1f} s; channel view {views['channel']:.1f} s, "
         f"Grad-CAM view {views['cam']:.1f} s; {n_faces} faces"],
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 faces instead of 200")
    args = parser.parse_args()
    n = 64 if args.quick else 200
    with tempfile.TemporaryDirectory(prefix="featlib-bench-teaching-") as tmp:
        os.environ["FEATLIB_CACHE_DIR"] = str(Path(tmp) / "cache")
        faces = featlib.load_samples("faces", max_images=n)
        backbones = [featlib.load_backbone("vgg16", weights=w) for w in ("offline", "random")]
        print(f"# teaching: VGG16 on {n} faces at 224 px; {machine()}")
        rows = sweep_rows(backbones, faces, Path(tmp))
        rows += channel_rows(backbones[0], faces)
        if not args.quick:  # the app itself always opens the whole sample set
            rows += page_rows(n)
    print(format_table(rows, ["what", "before (s)", "now (s)", "speed-up", "notes"]))


if __name__ == "__main__":
    main()
